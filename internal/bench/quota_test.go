package bench

import "testing"

func TestConvergedFrom(t *testing.T) {
	tests := []struct {
		name      string
		perSecond []int
		first     int
		last      int
		want      int
		ok        bool
	}{
		{"in the band from the third second", []int{40, 190, 140, 145, 150, 139, 30}, 0, 5, 2, true},
		{"a dip below the band restarts it", []int{140, 120, 140, 145, 150}, 0, 4, 2, true},
		{"over the free share is out of the band", []int{140, 140, 151, 140, 140}, 0, 4, 3, true},
		{"the last busy second out of the band: never", []int{140, 140, 130}, 0, 2, 0, false},
		{"in the band from the first call's second", []int{0, 140, 141}, 1, 2, 1, true},
		{"last past the counts", []int{140}, 0, 3, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, ok := convergedFrom(tt.perSecond, tt.first, tt.last, 135, 150)
			if k != tt.want || ok != tt.ok {
				t.Errorf("convergedFrom = %d, %v; want %d, %v", k, ok, tt.want, tt.ok)
			}
		})
	}
}
