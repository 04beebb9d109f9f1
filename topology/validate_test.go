package topology

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// validDoc is the contract's example document (docs/policy-document.md) built in Go, so
// each case below changes one thing in a document that is otherwise valid.
func validDoc() *Document {
	return &Document{
		Ports: []int{25},
		Pools: []Pool{
			{Name: "tokyo-dyn", Prefix: "10.1.0.0/16", Kind: KindDynamic, Service: "ftth"},
			{Name: "tokyo-fixed", Prefix: "10.1.200.0/29", Kind: KindStatic},
			{Name: "tokyo-v6", Prefix: "2001:db8:1::/48", Kind: KindDynamic, Service: "v6plus"},
		},
		Relays:       []Relay{{Name: "msa", Prefix: "192.0.2.25/32"}},
		Destinations: []DestinationSet{{Name: "mobile-carriers", Prefixes: []string{"198.51.100.0/24", "2001:db8:ffff::/48"}}},
		Services: []Service{
			{Name: "ftth", Phases: []Phase{
				{From: "2006-11-01T00:00:00+09:00", Block: Block{Sets: []string{"mobile-carriers"}}, Relays: new(true)},
				{From: "2006-12-01T00:00:00+09:00", Block: Block{All: true}, Relays: new(true), Pops: []string{"osaka-1"}},
				{From: "2006-12-15T00:00:00+09:00", Block: Block{All: true}, Relays: new(true)},
			}},
			{Name: "v6plus", Phases: []Phase{{Block: Block{All: true}, Relays: new(false)}}},
		},
		Bridges: []Bridge{{DPID: "0000000000000001", Name: "tokyo-1-sub-a", Pop: "tokyo-1"}},
		Exemptions: []Exemption{{Name: "ticket-4711", Prefix: "10.1.3.7/32", Until: "2026-12-01T00:00:00+09:00",
			Reason: "customer runs a mail server until the fixed-IP move", Ticket: "4711"}},
		Quarantines: []Quarantine{{Name: "bot-10-1-9-9", Prefix: "10.1.9.9/32", Until: "2026-11-30T12:00:00+09:00",
			Reason: "abuse report", Ticket: "AB-88"}},
	}
}

type validateCase struct {
	name   string
	mutate func(d *Document)
	// fields are the exact JSON paths of the expected problems, in order;
	// nil means the document must be valid.
	fields []string
	// contains is a substring of the first problem's message.
	contains string
}

func runValidateCases(t *testing.T, cases []validateCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc := validDoc()
			tc.mutate(doc)
			err := Validate(doc)
			if tc.fields == nil {
				if err != nil {
					t.Fatalf("valid document rejected: %v", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate = %v (%T), want *ValidationError", err, err)
			}
			var got []string
			for _, fe := range ve.Errors {
				got = append(got, fe.Field)
			}
			if !slices.Equal(got, tc.fields) {
				t.Fatalf("fields = %q, want %q\n%v", got, tc.fields, err)
			}
			if !strings.Contains(ve.Errors[0].Message, tc.contains) {
				t.Errorf("message %q does not contain %q", ve.Errors[0].Message, tc.contains)
			}
		})
	}
}

func TestValidateNames(t *testing.T) {
	runValidateCases(t, []validateCase{
		{"contract example", func(d *Document) {}, nil, ""},
		{"name with dots, dashes, underscores", func(d *Document) { d.Pools[0].Name = "0tokyo_dyn.a-b" }, nil, ""},
		{"name of 63 characters", func(d *Document) { d.Relays[0].Name = strings.Repeat("a", 63) }, nil, ""},
		{"name of 64 characters", func(d *Document) { d.Relays[0].Name = strings.Repeat("a", 64) }, []string{"relays[0].name"}, "limit is 63"},
		{"empty pool name", func(d *Document) { d.Pools[1].Name = "" }, []string{"pools[1].name"}, "pool name is required"},
		{"upper-case name", func(d *Document) { d.Pools[1].Name = "Tokyo" }, []string{"pools[1].name"}, "must start with a lower-case letter or digit"},
		{"name starting with dash", func(d *Document) { d.Destinations[0].Name = "-x"; d.Services[0].Phases[0].Block.Sets[0] = "-x" }, []string{"destinations[0].name"}, "must start"},
		{"name with space", func(d *Document) { d.Bridges[0].Name = "tokyo 1" }, []string{"bridges[0].name"}, "may only contain"},
		{"name with unicode", func(d *Document) { d.Services[1].Name = "v6プラス"; d.Pools[2].Service = "v6プラス" }, []string{"services[1].name"}, "may only contain"},
		{"duplicate pool name", func(d *Document) { d.Pools[2].Name = "tokyo-dyn" }, []string{"pools[2].name"}, `duplicate pool name "tokyo-dyn" (already used by pools[0].name)`},
		{"duplicate relay name", func(d *Document) { d.Relays = append(d.Relays, Relay{Name: "msa", Prefix: "192.0.2.26/32"}) }, []string{"relays[1].name"}, "duplicate relay name"},
		{"duplicate destination name", func(d *Document) {
			d.Destinations = append(d.Destinations, DestinationSet{Name: "mobile-carriers", Prefixes: []string{"203.0.113.0/24"}})
		}, []string{"destinations[1].name"}, "duplicate destination set name"},
		{"duplicate service name", func(d *Document) { d.Services[1].Name = "ftth"; d.Pools[2].Service = "ftth" }, []string{"services[1].name"}, "duplicate service name"},
		{"same name in different kinds", func(d *Document) { d.Relays[0].Name = "ftth"; d.Bridges[0].Name = "ftth" }, nil, ""},
	})
}

func TestValidatePrefixes(t *testing.T) {
	runValidateCases(t, []validateCase{
		{"IPv6 relay", func(d *Document) { d.Relays = append(d.Relays, Relay{Name: "msa6", Prefix: "2001:db8::25/128"}) }, nil, ""},
		{"default route pool", func(d *Document) { d.Pools[1].Prefix = "0.0.0.0/0" }, nil, ""},
		{"host bits set", func(d *Document) { d.Pools[0].Prefix = "10.1.0.1/16" }, []string{"pools[0].prefix"}, `"10.1.0.1/16" has host bits set; did you mean 10.1.0.0/16?`},
		{"IPv6 host bits set", func(d *Document) { d.Pools[2].Prefix = "2001:db8:1::1/48" }, []string{"pools[2].prefix"}, "did you mean 2001:db8:1::/48?"},
		{"no length", func(d *Document) { d.Relays[0].Prefix = "192.0.2.25" }, []string{"relays[0].prefix"}, "not a CIDR prefix"},
		{"empty prefix", func(d *Document) { d.Relays[0].Prefix = "" }, []string{"relays[0].prefix"}, "prefix is required"},
		{"leading zero octet", func(d *Document) { d.Pools[0].Prefix = "010.1.0.0/16" }, []string{"pools[0].prefix"}, "not a CIDR prefix"},
		{"length with leading zero", func(d *Document) { d.Pools[0].Prefix = "10.1.0.0/016" }, []string{"pools[0].prefix"}, ""},
		{"length too long", func(d *Document) { d.Pools[0].Prefix = "10.1.0.0/33" }, []string{"pools[0].prefix"}, "not a CIDR prefix"},
		{"upper-case IPv6", func(d *Document) { d.Pools[2].Prefix = "2001:DB8:1::/48" }, []string{"pools[2].prefix"}, "not in canonical form; write 2001:db8:1::/48"},
		{"uncompressed IPv6", func(d *Document) { d.Pools[2].Prefix = "2001:db8:1:0:0:0:0:0/48" }, []string{"pools[2].prefix"}, "write 2001:db8:1::/48"},
		{"IPv6 zone", func(d *Document) { d.Pools[2].Prefix = "fe80::%eth0/64" }, []string{"pools[2].prefix"}, "not a CIDR prefix"},
		{"IPv4-mapped IPv6", func(d *Document) { d.Pools[2].Prefix = "::ffff:10.0.0.0/104" }, []string{"pools[2].prefix"}, "IPv4-mapped"},
		{"spaces", func(d *Document) { d.Pools[0].Prefix = " 10.1.0.0/16" }, []string{"pools[0].prefix"}, "not a CIDR prefix"},
		{"destination prefix", func(d *Document) { d.Destinations[0].Prefixes[1] = "2001:db8:ffff::1/48" }, []string{"destinations[0].prefixes[1]"}, "host bits"},
		{"two pools share a prefix", func(d *Document) { d.Pools[1].Prefix = "10.1.0.0/16" }, []string{"pools[1].prefix"}, `already used by pools[0] ("tokyo-dyn")`},
		{"nested pools", func(d *Document) { d.Pools[1].Prefix = "10.1.0.0/17" }, nil, ""},
		{"same address different length", func(d *Document) { d.Pools[1].Prefix = "10.1.0.0/24" }, nil, ""},
		{"relays share a prefix", func(d *Document) { d.Relays = append(d.Relays, Relay{Name: "msa2", Prefix: "192.0.2.25/32"}) }, []string{"relays[1].prefix"}, "already used by relays[0]"},
		{"relay overlapping a pool", func(d *Document) { d.Relays[0].Prefix = "10.1.0.0/16" }, nil, ""},
		{"duplicate prefix in a set", func(d *Document) { d.Destinations[0].Prefixes[1] = "198.51.100.0/24" }, []string{"destinations[0].prefixes[1]"}, "duplicate prefix"},
		{"same prefix in two sets", func(d *Document) {
			d.Destinations = append(d.Destinations, DestinationSet{Name: "other", Prefixes: []string{"198.51.100.0/24"}})
		}, nil, ""},
		{"empty destination set", func(d *Document) { d.Destinations[0].Prefixes = nil }, []string{"destinations[0].prefixes"}, "needs at least one prefix"},
	})
}

func TestValidatePools(t *testing.T) {
	runValidateCases(t, []validateCase{
		{"missing kind", func(d *Document) { d.Pools[0].Kind = "" }, []string{"pools[0].kind"}, `kind is required: "dynamic" or "static"`},
		{"bad kind", func(d *Document) { d.Pools[0].Kind = "Dynamic" }, []string{"pools[0].kind"}, `not "Dynamic"`},
		{"dynamic without service", func(d *Document) { d.Pools[0].Service = "" }, []string{"pools[0].service"}, "needs a service"},
		{"dynamic with unknown service", func(d *Document) { d.Pools[0].Service = "adsl" }, []string{"pools[0].service"}, `unknown service "adsl"`},
		{"static with service", func(d *Document) { d.Pools[1].Service = "ftth" }, []string{"pools[1].service"}, "takes no service"},
		{"service defined after use", func(d *Document) { slices.Reverse(d.Services) }, nil, ""},
		{"no pools at all", func(d *Document) { d.Pools = nil }, nil, ""},
	})
}

func TestValidatePorts(t *testing.T) {
	runValidateCases(t, []validateCase{
		{"ports absent", func(d *Document) { d.Ports = nil }, nil, ""},
		{"several ports", func(d *Document) { d.Ports = []int{25, 2525, 65535, 1} }, nil, ""},
		{"ports empty", func(d *Document) { d.Ports = []int{} }, []string{"ports"}, "at least one"},
		{"port zero", func(d *Document) { d.Ports = []int{25, 0} }, []string{"ports[1]"}, "port 0 is out of range 1..65535"},
		{"port too high", func(d *Document) { d.Ports = []int{65536} }, []string{"ports[0]"}, "out of range"},
		{"negative port", func(d *Document) { d.Ports = []int{-25} }, []string{"ports[0]"}, "out of range"},
		{"duplicate port", func(d *Document) { d.Ports = []int{25, 587, 25} }, []string{"ports[2]"}, "duplicate port 25 (already ports[0])"},
		{"too many ports", func(d *Document) {
			d.Ports = nil
			for p := 1; p <= MaxPorts+1; p++ {
				d.Ports = append(d.Ports, p)
			}
		}, []string{"ports"}, fmt.Sprintf("too many ports: %d (the limit is %d)", MaxPorts+1, MaxPorts)},
	})
}

func TestValidateBridges(t *testing.T) {
	runValidateCases(t, []validateCase{
		// The decoders canonicalize every dpid (TestDocumentDPIDs); only a
		// Document built in Go can hold an upper-case one.
		{"upper-case dpid", func(d *Document) { d.Bridges[0].DPID = "00000000000000AB" }, []string{"bridges[0].dpid"},
			"not in canonical form; write 00000000000000ab"},
		{"bridge without pop", func(d *Document) { d.Bridges[0].Pop = "" }, nil, ""},
		{"no bridges", func(d *Document) { d.Bridges = nil }, nil, ""},
		{"short dpid", func(d *Document) { d.Bridges[0].DPID = "1" }, []string{"bridges[0].dpid"}, "exactly 16 hex digits"},
		{"0x dpid", func(d *Document) { d.Bridges[0].DPID = "0x00000000000001" }, []string{"bridges[0].dpid"}, "exactly 16 hex digits"},
		{"non-hex dpid", func(d *Document) { d.Bridges[0].DPID = "000000000000000g" }, []string{"bridges[0].dpid"}, "16 hex digits"},
		{"missing dpid", func(d *Document) { d.Bridges[0].DPID = "" }, []string{"bridges[0].dpid"}, "dpid is required"},
		{"duplicate dpid", func(d *Document) {
			d.Bridges[0].DPID = "00000000000000ab"
			d.Bridges = append(d.Bridges, Bridge{DPID: "00000000000000ab", Name: "b2", Pop: "tokyo-1"})
		}, []string{"bridges[1].dpid"}, `duplicate dpid 00000000000000ab (already bridges[0], "tokyo-1-sub-a")`},
		{"duplicate bridge name", func(d *Document) {
			d.Bridges = append(d.Bridges, Bridge{DPID: "0000000000000002", Name: "tokyo-1-sub-a", Pop: "tokyo-1"})
		}, []string{"bridges[1].name"}, "duplicate bridge name"},
		{"missing bridge name", func(d *Document) { d.Bridges[0].Name = "" }, []string{"bridges[0].name"}, "bridge name is required"},
		{"bad pop", func(d *Document) { d.Bridges[0].Pop = "Tokyo 1" }, []string{"bridges[0].pop"}, "pop "},
	})
}

func TestValidateServicesAndPhases(t *testing.T) {
	ftth := func(d *Document) []Phase { return d.Services[0].Phases }
	runValidateCases(t, []validateCase{
		{"service without phases", func(d *Document) { d.Services[1].Phases = nil }, []string{"services[1].phases"}, `service "v6plus" needs at least one phase`},
		{"from not RFC 3339", func(d *Document) { ftth(d)[0].From = "2006-11-01" }, []string{"services[0].phases[0].from"}, "not an RFC 3339 time"},
		{"from without zone", func(d *Document) { ftth(d)[0].From = "2006-11-01T00:00:00" }, []string{"services[0].phases[0].from"}, "RFC 3339"},
		{"from with fraction", func(d *Document) { ftth(d)[0].From = "2006-11-01T00:00:00.5+09:00" }, nil, ""},
		{"from in UTC", func(d *Document) { ftth(d)[2].From = "2006-12-14T15:00:00Z" }, nil, ""},
		{"phases out of order", func(d *Document) { ftth(d)[0], ftth(d)[2] = ftth(d)[2], ftth(d)[0] }, []string{"services[0].phases[1].from", "services[0].phases[2].from"}, "in order of \"from\""},
		{"absent from after a dated phase", func(d *Document) {
			d.Services[0].Phases = append(d.Services[0].Phases, Phase{Block: Block{Sets: []string{}}})
		}, []string{"services[0].phases[3].from"}, "in order"},
		{"absent from first", func(d *Document) {
			d.Services[0].Phases = append([]Phase{{Block: Block{Sets: []string{}}}}, d.Services[0].Phases...)
		}, nil, ""},
		{"order compares instants, not text", func(d *Document) {
			// 2006-11-30T20:00:00Z is 2006-12-01T05:00+09:00: after phases[1].
			ftth(d)[2].From = "2006-11-30T20:00:00Z"
		}, nil, ""},
		{"order across zones", func(d *Document) {
			// 2006-11-30T14:00:00Z is 23:00+09:00 on the 30th: before phases[1].
			ftth(d)[2].From = "2006-11-30T14:00:00Z"
		}, []string{"services[0].phases[2].from"}, "starts before services[0].phases[1]"},
		{"equal instants in different zones, same pops", func(d *Document) {
			ftth(d)[2].From = "2006-11-30T15:00:00Z"
			ftth(d)[2].Pops = []string{"osaka-1"}
		}, []string{"services[0].phases[2].from"}, "same instant"},
		{"equal instants, same pops in another order", func(d *Document) {
			ftth(d)[1].Pops = []string{"osaka-1", "kobe-1"}
			ftth(d)[2].From = ftth(d)[1].From
			ftth(d)[2].Pops = []string{"kobe-1", "osaka-1"}
		}, []string{"services[0].phases[2].from"}, "for the same pops"},
		{"equal instants, both global", func(d *Document) {
			ftth(d)[1].Pops = nil
			ftth(d)[2].From = ftth(d)[1].From
		}, []string{"services[0].phases[2].from"}, "same instant"},
		{"two phases without from", func(d *Document) {
			d.Services[1].Phases = append(d.Services[1].Phases, Phase{Block: Block{All: true}})
		}, []string{"services[1].phases[1].from"}, "beginning of time"},
		{"two phases without from for different pops", func(d *Document) {
			d.Services[1].Phases = []Phase{
				{Block: Block{All: true}, Pops: []string{"a"}},
				{Block: Block{All: true}, Pops: []string{"b"}},
			}
		}, nil, ""},
		{"equal instants, disjoint pops", func(d *Document) {
			ftth(d)[2].From = ftth(d)[1].From
			ftth(d)[2].Pops = []string{"kobe-1"}
		}, nil, ""},
		{"equal instants, overlapping pops", func(d *Document) {
			ftth(d)[1].Pops = []string{"osaka-1", "kobe-1"}
			ftth(d)[2].From = ftth(d)[1].From
			ftth(d)[2].Pops = []string{"kobe-1"}
		}, []string{"services[0].phases[2].from"}, `also applies to pop "kobe-1"`},
		{"equal instants, global and scoped", func(d *Document) {
			ftth(d)[2].From = ftth(d)[1].From
		}, []string{"services[0].phases[2].from"}, "applies to every pop"},
		{"unknown destination set", func(d *Document) { ftth(d)[0].Block.Sets = []string{"mobile-carriers", "pc-mx"} }, []string{"services[0].phases[0].block[1]"}, `unknown destination set "pc-mx"`},
		{"destination set listed twice", func(d *Document) { ftth(d)[0].Block.Sets = []string{"mobile-carriers", "mobile-carriers"} }, []string{"services[0].phases[0].block[1]"}, "listed twice"},
		{"block empty list", func(d *Document) { ftth(d)[0].Block = Block{Sets: []string{}} }, nil, ""},
		{"block missing", func(d *Document) { ftth(d)[0].Block = Block{} }, []string{"services[0].phases[0].block"}, "block is required"},
		{"block all and sets", func(d *Document) { ftth(d)[1].Block.Sets = []string{"mobile-carriers"} }, []string{"services[0].phases[1].block"}, "not both"},
		{"relays absent", func(d *Document) { ftth(d)[0].Relays = nil }, nil, ""},
		{"pops empty list", func(d *Document) { ftth(d)[1].Pops = []string{} }, []string{"services[0].phases[1].pops"}, "at least one pop"},
		{"pop empty string", func(d *Document) { ftth(d)[1].Pops = []string{"osaka-1", ""} }, []string{"services[0].phases[1].pops[1]"}, "may not be empty"},
		{"pop bad name", func(d *Document) { ftth(d)[1].Pops = []string{"Osaka"} }, []string{"services[0].phases[1].pops[0]"}, "must start"},
		{"pop listed twice", func(d *Document) { ftth(d)[1].Pops = []string{"osaka-1", "osaka-1"} }, []string{"services[0].phases[1].pops[1]"}, `pop "osaka-1" is listed twice`},
		{"many phases at one instant, disjoint pops", func(d *Document) {
			d.Services[1].Phases = nil
			for i := 0; i < MaxPhasesPerService; i++ {
				d.Services[1].Phases = append(d.Services[1].Phases, Phase{From: "2030-01-01T00:00:00Z", Block: Block{All: true}, Pops: []string{fmt.Sprintf("pop-%d", i), fmt.Sprintf("pop-%d-b", i)}})
			}
		}, nil, ""},
		{"many phases at one instant, last overlaps", func(d *Document) {
			d.Services[1].Phases = nil
			for i := 0; i < MaxPhasesPerService; i++ {
				d.Services[1].Phases = append(d.Services[1].Phases, Phase{From: "2030-01-01T00:00:00Z", Block: Block{All: true}, Pops: []string{fmt.Sprintf("pop-%d", i)}})
			}
			d.Services[1].Phases[MaxPhasesPerService-1].Pops = []string{"pop-x", "pop-7"}
		}, []string{fmt.Sprintf("services[1].phases[%d].from", MaxPhasesPerService-1)}, `services[1].phases[7] starts at the same instant (2030-01-01T00:00:00Z) and also applies to pop "pop-7"`},
		{"too many phases", func(d *Document) {
			d.Services[1].Phases = nil
			for i := 0; i <= MaxPhasesPerService; i++ {
				d.Services[1].Phases = append(d.Services[1].Phases, Phase{From: fmt.Sprintf("2030-01-01T00:%02d:%02d+09:00", i/60, i%60), Block: Block{All: true}})
			}
		}, []string{"services[1].phases"}, "too many phases"},
	})
}

func TestValidateReportsEveryProblem(t *testing.T) {
	doc := validDoc()
	doc.Ports = []int{0}
	doc.Pools[0].Prefix = "10.1.0.1/16"
	doc.Pools[1].Kind = "fixed"
	doc.Services[0].Phases[2].From = "tomorrow"
	doc.Bridges[0].DPID = "1"
	err := Validate(doc)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Validate = %v", err)
	}
	want := []string{"ports[0]", "pools[0].prefix", "pools[1].kind", "services[0].phases[2].from", "bridges[0].dpid"}
	var got []string
	for _, fe := range ve.Errors {
		got = append(got, fe.Field)
	}
	if !slices.Equal(got, want) {
		t.Errorf("fields = %q, want %q", got, want)
	}
	msg := err.Error()
	for _, part := range []string{"pools[0].prefix: \"10.1.0.1/16\" has host bits set", "; bridges[0].dpid: "} {
		if !strings.Contains(msg, part) {
			t.Errorf("Error() = %q, missing %q", msg, part)
		}
	}
}

func TestValidateNilAndEmpty(t *testing.T) {
	err := Validate(nil)
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Errors) != 1 || ve.Errors[0].Field != "" {
		t.Errorf("Validate(nil) = %v", err)
	}
	if err := Validate(&Document{}); err != nil {
		t.Errorf("an empty document blocks nothing and is valid: %v", err)
	}
}

func TestValidateLimits(t *testing.T) {
	doc := &Document{Services: []Service{{Name: "s", Phases: []Phase{{Block: Block{All: true}}}}}}
	for i := 0; i <= MaxPools; i++ {
		doc.Pools = append(doc.Pools, Pool{Name: fmt.Sprintf("p%d", i), Prefix: fmt.Sprintf("10.%d.%d.0/24", i>>8&0xff, i&0xff), Kind: KindDynamic, Service: "s"})
	}
	// 10.x.y.0/24 repeats after 65536 pools: fix the rest up in 11/8, 12/8.
	for i := 65536; i <= MaxPools; i++ {
		doc.Pools[i].Prefix = fmt.Sprintf("11.%d.%d.0/24", (i-65536)>>8&0xff, (i-65536)&0xff)
	}
	err := Validate(doc)
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Errors) != 1 || ve.Errors[0].Field != "pools" || !strings.Contains(ve.Errors[0].Message, "too many pools") {
		t.Fatalf("Validate = %v", err)
	}
	doc.Pools = doc.Pools[:MaxPools]
	if err := Validate(doc); err != nil {
		t.Errorf("exactly MaxPools: %v", err)
	}

	// A broken document reports a bounded number of problems.
	for i := range doc.Pools {
		doc.Pools[i].Kind = "bad"
	}
	err = Validate(doc)
	if !errors.As(err, &ve) || len(ve.Errors) != MaxReportedErrors+1 {
		t.Fatalf("got %d problems, want %d", len(ve.Errors), MaxReportedErrors+1)
	}
	last := ve.Errors[MaxReportedErrors]
	if last.Field != "" || !strings.Contains(last.Message, fmt.Sprintf("%d more problems", MaxPools-MaxReportedErrors)) {
		t.Errorf("summary = %+v", last)
	}

	dests := &Document{}
	for i := 0; i <= MaxDestinationPrefixes/1000; i++ {
		set := DestinationSet{Name: fmt.Sprintf("d%d", i)}
		for j := 0; j < 1000; j++ {
			set.Prefixes = append(set.Prefixes, fmt.Sprintf("10.%d.%d.0/24", j>>8, j&0xff))
		}
		dests.Destinations = append(dests.Destinations, set)
	}
	err = Validate(dests)
	if !errors.As(err, &ve) || ve.Errors[0].Field != "destinations" || !strings.Contains(ve.Errors[0].Message, "destination prefixes in total") {
		t.Errorf("Validate = %v", err)
	}
}

func BenchmarkValidate100kPools(b *testing.B) {
	doc := validDoc()
	doc.Pools = doc.Pools[:0]
	for i := 0; i < 100_000; i++ {
		doc.Pools = append(doc.Pools, Pool{
			Name:    fmt.Sprintf("pool-%d", i),
			Prefix:  fmt.Sprintf("10.%d.%d.%d/30", i>>14, i>>6&0xff, i&0x3f<<2),
			Kind:    KindDynamic,
			Service: "ftth",
		})
	}
	if err := Validate(doc); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := Validate(doc); err != nil {
			b.Fatal(err)
		}
	}
}
