"""The flat index space of a scan: endpoints by index and back, overlaps collapsed."""

from __future__ import annotations

import ipaddress

from cleartext.targets import Named, TargetSpace, parse_ports


def test_space_enumerates_every_endpoint_once_and_inverts() -> None:
    ports = parse_ports("25,993")
    nets = [ipaddress.ip_network("192.0.2.0/30"), ipaddress.ip_network("192.0.2.2/31"),
            ipaddress.ip_network("2001:db8::/127")]
    space = TargetSpace(nets, [Named("mail.example", "198.51.100.7")], ports)
    assert space.addresses == 4 + 2 + 1  # the /31 lies inside the /30: collapsed
    assert space.size == space.addresses * 2
    seen = set()
    for index in range(space.size):
        ep = space.endpoint(index)
        key = (ep.address, ep.port, ep.hostname)
        assert key not in seen
        seen.add(key)
        assert space.index_of(ep.address, ep.port, ep.hostname) == index
    assert ("198.51.100.7", 993, "mail.example") in seen
    assert space.index_of("203.0.113.1", 25, None) is None
    assert space.index_of("192.0.2.1", 110, None) is None


def test_a_slash_8_costs_no_memory() -> None:
    space = TargetSpace([ipaddress.ip_network("10.0.0.0/8")], [], parse_ports("25,465,587,110,995,143,993"))
    assert space.size == 2**24 * 7
    last = space.endpoint(space.size - 1)
    assert (last.address, last.port) == ("10.255.255.255", 993)
