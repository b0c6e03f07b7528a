"""PACKHOUSE_LDAP_GROUP_MAP, read by the settings (so nothing here touches the models)."""

from accounts.roles import AccessLevel


def parse_group_map(text):
    """`<group DN>=<group path>:<role>` entries separated by `;` (role: guest, reporter,
    developer, maintainer, owner) -> {DN: (path, level)}."""
    levels = {level.label.lower(): int(level) for level in AccessLevel if level >= AccessLevel.GUEST}
    mapping = {}
    for entry in filter(None, (part.strip() for part in (text or "").split(";"))):
        dn, _, target = entry.rpartition("=")
        path, _, role = target.partition(":")
        if not dn or not path or role.lower() not in levels:
            raise ValueError(f"PACKHOUSE_LDAP_GROUP_MAP: cannot read {entry!r} (<group DN>=<group path>:<role>)")
        mapping[dn.strip()] = (path.strip(), levels[role.lower()])
    return mapping
