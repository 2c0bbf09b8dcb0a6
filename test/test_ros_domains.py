"""Private ROS domains (tests, `farl run`, benchmarks) keep DDS off the ports libfranka binds.

libfranka's UDP state socket is bound to port 0, so the kernel gives it an
ephemeral port. DDS participants of domain D send discovery to fixed ports
7400 + 250·D + …; where that block lies in the ephemeral range (D ≈ 100-214 on
Linux) a discovery packet can land on libfranka's socket, and the control node
stops with "libfranka: incorrect object size". This happened in CI.
"""
import random

from farl_control.launching.processes import (SHARED_ROS_DOMAINS, ephemeral_port_range, private_ros_domain,
                                              ros_domain_ports)


def test_domain_ports_follow_the_rtps_mapping():
    assert ros_domain_ports(0).start == 7400
    assert ros_domain_ports(42) == range(17900, 18150)


def test_a_private_domain_never_sends_to_an_ephemeral_port_nor_shares_a_default_domain():
    low, high = ephemeral_port_range()
    rng = random.Random(7)
    chosen = {private_ros_domain(rng) for _ in range(2000)}
    for domain in chosen:
        ports = ros_domain_ports(domain)
        assert ports.stop <= low or ports.start > high, f"domain {domain} sends to ports {ports}"
        assert domain not in SHARED_ROS_DOMAINS
        assert 0 <= domain <= 232
    assert len(chosen) > 50  # still random enough that concurrent sessions rarely meet


def test_the_test_session_itself_runs_in_such_a_domain():
    import os

    domain = int(os.environ["ROS_DOMAIN_ID"])
    low, high = ephemeral_port_range()
    ports = ros_domain_ports(domain)
    assert ports.stop <= low or ports.start > high or os.environ.get("FARL_TEST_DOMAIN_ID")
