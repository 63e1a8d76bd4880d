"""Well-known public blocklists a household admin can pick on the DNS page instead of
looking up URLs. All are in a form the resolver reads (hosts, adblock or plain names);
the resolver fetches a list only when a policy uses it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KnownList:
    name: str
    about: str
    url: str


KNOWN_LISTS: tuple[KnownList, ...] = (
    KnownList(
        "StevenBlack unified hosts",
        "Ads and malware; a careful, widely used base list",
        "https://raw.githubusercontent.com/StevenBlack/hosts/master/hosts",
    ),
    KnownList(
        "StevenBlack hosts + adult sites",
        "The unified list plus pornography: for children's devices",
        "https://raw.githubusercontent.com/StevenBlack/hosts/master/alternates/porn/hosts",
    ),
    KnownList(
        "AdGuard DNS filter",
        "Ads and trackers, as AdGuard's own DNS uses it",
        "https://adguardteam.github.io/AdGuardSDNSFilter/Filters/filter.txt",
    ),
    KnownList(
        "OISD big",
        "Ads, trackers and malware with few false positives",
        "https://big.oisd.nl",
    ),
    KnownList(
        "HaGeZi Multi PRO",
        "Ads, trackers, telemetry and malware; stricter",
        "https://raw.githubusercontent.com/hagezi/dns-blocklists/main/domains/pro.txt",
    ),
    KnownList(
        "HaGeZi Threat Intelligence",
        "Phishing, malware and scam domains only",
        "https://raw.githubusercontent.com/hagezi/dns-blocklists/main/domains/tif.txt",
    ),
    KnownList(
        "HaGeZi Gambling",
        "Betting and casino sites",
        "https://raw.githubusercontent.com/hagezi/dns-blocklists/main/domains/gambling.txt",
    ),
)
KNOWN_URLS = frozenset(k.url for k in KNOWN_LISTS)


def merge(picked: list[str], other: list[str]) -> list[str]:
    """The policy's lists: the picked well-known ones (in catalogue order), then the
    others typed in, each once."""
    chosen = [k.url for k in KNOWN_LISTS if k.url in picked]
    return chosen + [u for u in dict.fromkeys(other) if u not in chosen]
