package tim

import (
	"maps"
	"slices"
	"strings"
)

// DefaultRegion is the region used when Config.Region is empty.
const DefaultRegion = "china"

// Regions maps a region name (Config.Region) to the domain of Tencent Cloud
// Chat's REST API in that region, as listed on the admin_msgwithdraw API page.
// An SDKAppID lives in one data centre: calling another region's domain
// fails with error code 60026. A region missing here (Tencent's pages also
// mention Tokyo, adminapijpn.im.qcloud.com) is reached through
// Config.Endpoint.
var Regions = map[string]string{
	"china":         "console.tim.qq.com",
	"singapore":     "adminapisgp.im.qcloud.com",
	"seoul":         "adminapikr.im.qcloud.com",
	"frankfurt":     "adminapiger.im.qcloud.com",
	"mumbai":        "adminapiind.im.qcloud.com",
	"siliconvalley": "adminapiusa.im.qcloud.com",
	"jakarta":       "adminapiidn.im.qcloud.com",
}

// regionNames returns the known region names, sorted, for error messages.
func regionNames() string {
	return strings.Join(slices.Sorted(maps.Keys(Regions)), ", ")
}
