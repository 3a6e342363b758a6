// Unit tests of the resource-name helpers.

package xenchan

import "testing"

func TestNames(t *testing.T) {
	if got := DomainName("vm1"); got != "domains/vm1" {
		t.Errorf("DomainName = %q", got)
	}
	if got := DomainName("domains/vm1"); got != "domains/vm1" {
		t.Errorf("DomainName of a name = %q", got)
	}
	if got := ChannelName("vm1", "org.x.0"); got != "domains/vm1/channels/org.x.0" {
		t.Errorf("ChannelName = %q", got)
	}
	d, c, err := ParseChannelName("domains/vm1/channels/org.x.0")
	if err != nil || d != "vm1" || c != "org.x.0" {
		t.Errorf("ParseChannelName = %q %q %v", d, c, err)
	}
	for _, bad := range []string{"", "domains/vm1", "domains//channels/x", "domains/a/channels/", "x/a/channels/b", "domains/a/channels/b/c"} {
		if _, _, err := ParseChannelName(bad); err == nil {
			t.Errorf("ParseChannelName(%q) accepted", bad)
		}
	}
	if d, err := ParseDomainName("domains/vm1"); err != nil || d != "vm1" {
		t.Errorf("ParseDomainName = %q %v", d, err)
	}
	if _, err := ParseDomainName("domains/vm1/channels/x"); err == nil {
		t.Error("ParseDomainName accepted a channel name")
	}
}
