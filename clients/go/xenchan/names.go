// Resource names of the xenchan.v1 API: domains/{domain} and
// domains/{domain}/channels/{channel}.

package xenchan

import (
	"fmt"
	"strings"
)

// AllDomains is the parent that stands for every domain of the host, accepted
// by ListChannels and Watch.
const AllDomains = "domains/-"

// DomainName returns the resource name of a domain given by UUID or display
// name ("vm1" -> "domains/vm1"). A name that is already a resource name is
// returned unchanged.
func DomainName(domain string) string {
	if strings.HasPrefix(domain, "domains/") {
		return domain
	}
	return "domains/" + domain
}

// ChannelName returns the resource name of a channel of a domain given by
// UUID, display name or resource name:
// ChannelName("vm1", "org.xenchan.agent.0") is
// "domains/vm1/channels/org.xenchan.agent.0".
func ChannelName(domain, channelID string) string {
	return DomainName(domain) + "/channels/" + channelID
}

// ParseChannelName splits "domains/{domain}/channels/{channel}" into the
// domain (UUID or display name, as written) and the channel id. It checks the
// shape only; the server checks the rest.
func ParseChannelName(name string) (domain, channelID string, err error) {
	parts := strings.Split(name, "/")
	if len(parts) != 4 || parts[0] != "domains" || parts[2] != "channels" || parts[1] == "" ||
		parts[3] == "" {
		return "", "", fmt.Errorf("xenchan: %q is not a channel name (domains/{domain}/channels/{channel})", name)
	}
	return parts[1], parts[3], nil
}

// ParseDomainName returns the domain of "domains/{domain}".
func ParseDomainName(name string) (string, error) {
	parts := strings.Split(name, "/")
	if len(parts) != 2 || parts[0] != "domains" || parts[1] == "" {
		return "", fmt.Errorf("xenchan: %q is not a domain name (domains/{domain})", name)
	}
	return parts[1], nil
}
