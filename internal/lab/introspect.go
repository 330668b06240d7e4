package lab

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"runtime"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/recallq/recallq/internal/cli"
)

// This file lets other code look at the command line without running it:
// the deployment files' tests (package deploy) check every command, flag
// and environment variable that a compose file or a Kubernetes manifest
// names against the program as it is built, not against a list kept by
// hand.

// CommandInfo describes one command of the tree.
type CommandInfo struct {
	// Path is the command's words after "recallq": "worker", "campaign start".
	Path string
	// Runnable is false for a command that only groups others.
	Runnable bool
	// Hidden commands are not listed in the help.
	Hidden bool
	// Flags are the flags the command accepts, its own and those it
	// inherits from its parents, sorted by name.
	Flags []FlagInfo
	// Func is the package-qualified name of the function whose code runs
	// the command, as the Go runtime names it (for a closure, the
	// function it is written in and a ".funcN" suffix), or "" for a
	// command that does not run.
	Func string
}

// FlagInfo describes one flag.
type FlagInfo struct {
	Name      string // without the dashes
	Shorthand string // "" if none
	Type      string // pflag's type name: "string", "int", "bool", "duration" ...
	Default   string // the default as the help shows it, computed from the environment of this process
	// Env are the environment variables the flag's default comes from, as
	// its usage names them: "... (env NAME)" or "(env NAME or NAME_FILE)".
	Env []string
}

// flagUsageEnvMention finds "(env NAME)" and "(env NAME or OTHER)" in a usage string.
var (
	flagUsageEnvMention = regexp.MustCompile(`\(env ([^)]*)\)`)
	flagUsageEnvName    = regexp.MustCompile(`\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b`)
)

// Commands lists every command of recallq's command tree, the root
// excluded, sorted by path. Flag defaults that come from the environment
// are computed from this process's environment when Commands runs.
func Commands() []CommandInfo {
	var out []CommandInfo
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			out = append(out, describeCommand(sub))
			walk(sub)
		}
	}
	walk(cli.NewRoot(io.Discard, io.Discard))
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// ParseCommandLine resolves args, the words a container passes after the
// program's name, to a command and parses them as that command would,
// without running it. It returns the command's description and the value
// of every flag the command accepts after parsing (defaults included,
// computed from this process's environment, as in the container where the
// environment is the container's), or an error naming the unknown command
// or flag, the bad value or the unexpected argument.
func ParseCommandLine(args []string) (CommandInfo, map[string]string, error) {
	root := cli.NewRoot(io.Discard, io.Discard)
	cmd, rest, err := root.Find(args)
	if err != nil {
		return CommandInfo{}, nil, err
	}
	if cmd == root {
		return CommandInfo{}, nil, errors.New("no command given: the first word must name one, e.g. worker")
	}
	info := describeCommand(cmd)
	if !cmd.Runnable() {
		return info, nil, fmt.Errorf("%q only groups other commands: name one of them", info.Path)
	}
	if cmd.DisableFlagParsing {
		return info, nil, fmt.Errorf("%q parses its own arguments and cannot be checked", info.Path)
	}
	if err := cmd.ParseFlags(rest); err != nil {
		return info, nil, fmt.Errorf("%s: %w", info.Path, err)
	}
	if err := cmd.ValidateArgs(cmd.Flags().Args()); err != nil {
		return info, nil, fmt.Errorf("%s: %w", info.Path, err)
	}
	values := map[string]string{}
	cmd.Flags().VisitAll(func(f *pflag.Flag) { values[f.Name] = f.Value.String() })
	return info, values, nil
}

func describeCommand(c *cobra.Command) CommandInfo {
	path := strings.TrimSpace(strings.TrimPrefix(c.CommandPath(), c.Root().Name()))
	info := CommandInfo{Path: path, Runnable: c.Runnable(), Hidden: c.Hidden}
	switch {
	case c.RunE != nil:
		info.Func = commandFuncName(c.RunE)
	case c.Run != nil:
		info.Func = commandFuncName(c.Run)
	}
	// Flags() of a command that has not run holds only its local flags;
	// inherited ones are its parents' persistent flags.
	seen := map[string]bool{}
	add := func(f *pflag.Flag) {
		if seen[f.Name] {
			return
		}
		seen[f.Name] = true
		fi := FlagInfo{Name: f.Name, Shorthand: f.Shorthand, Type: f.Value.Type(), Default: f.DefValue}
		for _, m := range flagUsageEnvMention.FindAllStringSubmatch(f.Usage, -1) {
			fi.Env = append(fi.Env, flagUsageEnvName.FindAllString(m[1], -1)...)
		}
		info.Flags = append(info.Flags, fi)
	}
	c.LocalFlags().VisitAll(add)
	c.InheritedFlags().VisitAll(add)
	sort.Slice(info.Flags, func(i, j int) bool { return info.Flags[i].Name < info.Flags[j].Name })
	return info
}

func commandFuncName(fn any) string {
	f := runtime.FuncForPC(reflect.ValueOf(fn).Pointer())
	if f == nil {
		return ""
	}
	return f.Name()
}
