"""Public names on /mcp: unique, stable, at most 64 characters, routed by exact lookup."""

from __future__ import annotations

from mcp_hub.gateway.naming import (
    MAX_NAME_LENGTH,
    Entry,
    build_catalog,
    hashed_name,
    public_uri,
    split_public_uri,
)


def test_plain_names_when_they_fit() -> None:
    catalog = build_catalog([Entry("s1", "github", "create_issue"), Entry("s2", "jira", "create_issue")])
    assert catalog == {
        "github__create_issue": Entry("s1", "github", "create_issue"),
        "jira__create_issue": Entry("s2", "jira", "create_issue"),
    }


def test_separator_inside_aliases_and_names_does_not_collide() -> None:
    """`a__b` + `c` and `a` + `b__c` would both be `a__b__c`: splitting could not route them, and the
    catalog gives each its own hashed name instead."""
    first, second = Entry("s1", "a__b", "c"), Entry("s2", "a", "b__c")
    catalog = build_catalog([first, second])
    assert len(catalog) == 2 and set(catalog.values()) == {first, second}
    assert "a__b__c" not in catalog
    assert catalog[hashed_name("a__b", "c")] == first
    assert catalog[hashed_name("a", "b__c")] == second


def test_long_names_are_shortened_with_a_stable_hash() -> None:
    long_tool = "x" * 80
    entry = Entry("s1", "an_alias_of_thirty_two_characters", long_tool)
    catalog = build_catalog([entry, Entry("s1", "an_alias_of_thirty_two_characters", long_tool + "y")])
    assert len(catalog) == 2
    assert all(len(name) <= MAX_NAME_LENGTH for name in catalog)
    assert all(name.startswith("an_alias_of_thirty_two_characters__x") for name in catalog)
    # Stable across calls and independent of the order entries come in.
    again = build_catalog(list(reversed(list(catalog.values()))))
    assert again == catalog


def test_names_do_not_depend_on_other_servers_unless_they_collide() -> None:
    alone = build_catalog([Entry("s1", "github", "search")])
    together = build_catalog([Entry("s1", "github", "search"), Entry("s2", "gitlab", "search")])
    assert "github__search" in alone and "github__search" in together


def test_resource_uris_round_trip_including_templates() -> None:
    for alias, uri in [("docs", "file:///a/b.md"), ("x", "test://template/{id}/data"), ("d", "a/b/c?q=1")]:
        wrapped = public_uri(alias, uri)
        assert split_public_uri(wrapped) == (alias, uri)
    assert split_public_uri("file:///etc/passwd") is None
    assert split_public_uri("mcp-hub://no-slash") is None
