"""Strict resource ID and scope parsing: the shapes we capture on, and IDs that must never reach ARM."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capture.resource_ids import (
    MAX_RESOURCE_ID_LENGTH,
    InvalidResourceId,
    ResourceId,
    Scope,
    parse_resource_id,
    parse_scope,
)
from tests.conftest import SUB, VM_WEB_1, VMSS_API

VMSS_1 = f"{VMSS_API}/virtualMachines/1"


def test_vm() -> None:
    rid = parse_resource_id(VM_WEB_1)
    assert rid.raw == VM_WEB_1
    assert (rid.subscription, rid.resource_group, rid.provider) == (SUB, "rg-app", "Microsoft.Compute")
    assert rid.types == ("virtualMachines",)
    assert rid.names == ("vm-web-1",)
    assert rid.kind == "vm"
    assert rid.vm_name == "vm-web-1"
    assert rid.name == "vm-web-1"
    assert rid.resource_type == "Microsoft.Compute/virtualMachines"
    assert rid.scale_set_id is None
    assert rid.instance_id is None
    assert rid.key == VM_WEB_1.casefold()
    assert str(rid) == VM_WEB_1


def test_scale_set_instance() -> None:
    rid = parse_resource_id(VMSS_1)
    assert rid.kind == "vmss_instance"
    assert rid.types == ("virtualMachineScaleSets", "virtualMachines")
    assert rid.names == ("vmss-api", "1")
    assert rid.scale_set_id == VMSS_API
    assert rid.instance_id == "1"
    assert rid.vm_name is None


def test_lowercase_keywords_as_alerts_send_them() -> None:
    text = f"/subscriptions/{SUB}/resourcegroups/rg-app/providers/microsoft.compute/virtualmachines/vm-web-1"
    rid = parse_resource_id(text)
    assert rid.raw == text  # kept as sent
    assert rid.kind == "vm"
    assert rid.resource_group == "rg-app"
    assert rid == parse_resource_id(VM_WEB_1)
    assert rid.key == parse_resource_id(VM_WEB_1).key


def test_upper_case_everything_keeps_case_but_compares_equal() -> None:
    text = VMSS_1.upper()
    rid = parse_resource_id(text)
    assert rid.kind == "vmss_instance"
    assert rid.scale_set_id == VMSS_API.upper()  # cut from the raw text, case preserved
    assert rid.instance_id == "1"
    assert rid == parse_resource_id(VMSS_1)
    assert len({rid, parse_resource_id(VMSS_1)}) == 1


@pytest.mark.parametrize(
    ("text", "types"),
    [
        (VMSS_API, ("virtualMachineScaleSets",)),
        (f"{VM_WEB_1}/extensions/NetworkWatcherAgentLinux", ("virtualMachines", "extensions")),
        (
            f"/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.Network/networkInterfaces/nic-1",
            ("networkInterfaces",),
        ),
        (
            f"/subscriptions/{SUB}/resourcegroups/rg-app/providers/microsoft.operationalinsights/workspaces/law",
            ("workspaces",),
        ),
        (
            f"/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.ClassicCompute/virtualMachines/old",
            ("virtualMachines",),
        ),
        # Published samples carry malformed GUIDs: the subscription is opaque.
        (
            "/subscriptions/12345a-1234b-123c-123d-12345678e/resourcegroups/ai-engineering/providers/"
            "microsoft.compute/virtualmachinescalesets/ss",
            ("virtualmachinescalesets",),
        ),
    ],
)
def test_resources_that_are_not_capturable(text: str, types: tuple[str, ...]) -> None:
    rid = parse_resource_id(text)
    assert rid.types == types
    assert rid.kind is None
    assert rid.vm_name is None
    assert rid.scale_set_id is None
    assert rid.instance_id is None


def test_opaque_subscription_from_published_sample() -> None:
    rid = parse_resource_id(
        "/subscriptions/12345a-1234b-123c-123d-12345678e/resourcegroups/ai-engineering/providers/"
        "microsoft.compute/virtualmachines/testvm"
    )
    assert rid.subscription == "12345a-1234b-123c-123d-12345678e"
    assert rid.kind == "vm"


def test_longest_accepted_id() -> None:
    prefix = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/"
    text = prefix + "v" * (MAX_RESOURCE_ID_LENGTH - len(prefix))
    assert len(text) == MAX_RESOURCE_ID_LENGTH
    assert parse_resource_id(text).kind == "vm"
    with pytest.raises(InvalidResourceId, match="at most 1024"):
        parse_resource_id(text + "v")


_RG = f"/subscriptions/{SUB}/resourceGroups/rg-app"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        (VM_WEB_1[1:], "does not start with '/subscriptions/'"),
        (VM_WEB_1.replace("/subscriptions/", "/subscription/"), "does not start with '/subscriptions/'"),
        (
            "/tenants/x/providers/Microsoft.Compute/virtualMachines/vm",
            "does not start with '/subscriptions/'",
        ),
        ("https://management.azure.com" + VM_WEB_1, "does not start with '/subscriptions/'"),
        ("/subscriptions", "does not start with '/subscriptions/'"),
        ("/subscriptions/", "empty segment"),
        ("/subscriptions//resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm", "empty segment"),
        (VM_WEB_1.replace("/providers/", "//providers/"), "empty segment"),
        (VM_WEB_1 + "/", "empty segment"),
        (VM_WEB_1 + "/../../vm-db-1", "'..'"),
        (f"{_RG}/providers/Microsoft.Compute/virtualMachines/..", "'..'"),
        (f"{_RG}/providers/Microsoft.Compute/virtualMachines/a..b", "'..'"),
        (f"{_RG}/providers/Microsoft.Compute/virtualMachines/.", "'.' segment"),
        (VM_WEB_1 + "%2F..%2Fvm-db-1", "percent-encoding"),
        (VM_WEB_1 + "?api-version=2024-07-01", "query string"),
        (VM_WEB_1 + "#fragment", "fragment"),
        (VM_WEB_1.replace("/", "\\"), "backslash"),
        (VM_WEB_1.replace("vm-web-1", "vm web 1"), "whitespace"),
        (VM_WEB_1 + " ", "whitespace"),
        (" " + VM_WEB_1, "whitespace"),
        (VM_WEB_1 + "\n", "whitespace"),
        (VM_WEB_1 + "\t", "whitespace"),
        (VM_WEB_1 + "\x00", "control character"),
        (VM_WEB_1 + "\x1b[31m", "control character"),
        (VM_WEB_1 + "\u200b", "U+200B"),  # zero-width space: invisible in logs
        (VM_WEB_1 + "\u00a0", "whitespace"),  # no-break space
        (VM_WEB_1 + "\u2028", "whitespace"),
        (VM_WEB_1 + "\ud800", "U+D800"),  # a lone surrogate (possible from JSON escapes)
        (f"/subscriptions/{SUB}", "no resource group"),
        (f"/subscriptions/{SUB}/resourceGroups", "no resource group"),
        (f"/subscriptions/{SUB}/locations/eastus", "no resource group"),
        (_RG, "is a scope, not a resource"),
        (f"{_RG}/providers", "is a scope, not a resource"),
        (f"{_RG}/virtualMachines/vm", "is a scope, not a resource"),
        (f"{_RG}/Microsoft.Compute/virtualMachines/vm", "is a scope, not a resource"),
        (f"{_RG}/providers/Microsoft.Compute", "no resource type and name"),
        (f"{_RG}/providers/Microsoft.Compute/virtualMachines", "without a name"),
        (f"{VMSS_API}/virtualMachines", "without a name"),
        (f"/subscriptions/{SUB}/providers/Microsoft.Security/pricings/VirtualMachines", "subscription-level"),
        (f"{VM_WEB_1}/providers/Microsoft.Insights/diagnosticSettings/x", "nested 'providers'"),
        (f"{_RG}/providers/Microsoft.Compute/subscriptions/x", "nested 'subscriptions'"),
        ("/" + "a" * 2000, "at most 1024"),
    ],
)
def test_rejected_ids(text: str, message: str) -> None:
    with pytest.raises(InvalidResourceId) as caught:
        parse_resource_id(text)
    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("value", [None, 42, b"/subscriptions/x", ["/subscriptions/x"]])
def test_rejects_non_strings(value: object) -> None:
    with pytest.raises(InvalidResourceId, match="must be a string"):
        parse_resource_id(value)  # type: ignore[arg-type]


def test_equality_is_case_insensitive_and_ignores_other_types() -> None:
    a = parse_resource_id(VM_WEB_1)
    b = parse_resource_id(VM_WEB_1.lower())
    assert a == b
    assert hash(a) == hash(b)
    assert a.raw != b.raw
    assert a != VM_WEB_1  # a string is not a ResourceId
    assert a != parse_resource_id(VM_WEB_1.replace("vm-web-1", "vm-web-2"))


# --- scopes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "subscription", "group"),
    [
        (f"/subscriptions/{SUB}", SUB, None),
        (f"/subscriptions/{SUB}/", SUB, None),
        (f"/subscriptions/{SUB}/resourceGroups/rg-app", SUB, "rg-app"),
        (f"/subscriptions/{SUB}/resourcegroups/RG-App/", SUB, "RG-App"),
        (f"/SUBSCRIPTIONS/{SUB}/RESOURCEGROUPS/rg-app", SUB, "rg-app"),
    ],
)
def test_scopes(text: str, subscription: str, group: str | None) -> None:
    scope = parse_scope(text)
    assert (scope.raw, scope.subscription, scope.resource_group) == (text, subscription, group)
    assert scope.key == text.casefold()
    assert str(scope) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("/", "empty segment"),
        (f"subscriptions/{SUB}", "does not start with '/subscriptions/'"),
        (f"/subscriptions/{SUB}//", "empty segment"),
        (f"/subscriptions/{SUB}/resourceGroups", "is not a scope"),
        (f"/subscriptions/{SUB}/resourceGroups/rg-app/providers", "is not a scope"),
        (f"/subscriptions/{SUB}/foo/rg-app", "is not a scope"),
        (VM_WEB_1, "is not a scope"),
        (f"/subscriptions/{SUB}/resourceGroups/..", "'..'"),
        (f"/subscriptions/{SUB}?x=1", "query string"),
        (f"/subscriptions/{SUB} ", "whitespace"),
    ],
)
def test_rejected_scopes(text: str, message: str) -> None:
    with pytest.raises(InvalidResourceId) as caught:
        parse_scope(text)
    assert message in str(caught.value)


def test_subscription_scope_contains_any_group_case_insensitively() -> None:
    scope = parse_scope(f"/subscriptions/{SUB.upper()}")
    assert scope.contains(parse_resource_id(VM_WEB_1))
    assert scope.contains(parse_resource_id(VMSS_1.lower()))
    assert not scope.contains(
        parse_resource_id(VM_WEB_1.replace(SUB, "00000000-0000-0000-0000-000000000002"))
    )


def test_group_scope_compares_whole_segments() -> None:
    scope = parse_scope(f"/subscriptions/{SUB}/resourceGroups/RG-APP")
    assert scope.contains(parse_resource_id(VM_WEB_1))
    assert scope.contains(VMSS_1)  # a string is parsed first
    # A prefix is not containment: rg-app does not contain rg-app2.
    assert not scope.contains(VM_WEB_1.replace("/rg-app/", "/rg-app2/"))
    assert not scope.contains(VM_WEB_1.replace("/rg-app/", "/rg-weu/"))
    with pytest.raises(InvalidResourceId):
        scope.contains(VM_WEB_1 + "/..")


def test_scope_equality() -> None:
    assert parse_scope(f"/subscriptions/{SUB}/resourceGroups/rg-app") == parse_scope(
        f"/subscriptions/{SUB}/resourcegroups/RG-APP/"
    )
    assert parse_scope(f"/subscriptions/{SUB}") != parse_scope(f"/subscriptions/{SUB}/resourceGroups/rg-app")
    assert len({parse_scope(f"/subscriptions/{SUB}"), parse_scope(f"/subscriptions/{SUB}/")}) == 1
    assert Scope(raw="x", subscription=SUB) != "x"


# --- properties ------------------------------------------------------------------------------------

_SEGMENT = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", min_size=1, max_size=12
)


@given(
    subscription=_SEGMENT,
    group=_SEGMENT,
    namespace=_SEGMENT,
    pairs=st.lists(st.tuples(_SEGMENT, _SEGMENT), min_size=1, max_size=4),
    keywords=st.tuples(
        st.sampled_from(["resourceGroups", "resourcegroups", "RESOURCEGROUPS"]),
        st.sampled_from(["providers", "Providers", "PROVIDERS"]),
    ),
)
def test_well_formed_ids_round_trip(
    subscription: str, group: str, namespace: str, pairs: list[tuple[str, str]], keywords: tuple[str, str]
) -> None:
    keywords_folded = {"providers", "subscriptions", "resourcegroups"}
    if any(t.casefold() in keywords_folded for t, _ in pairs):
        return
    text = f"/subscriptions/{subscription}/{keywords[0]}/{group}/{keywords[1]}/{namespace}/" + "/".join(
        f"{t}/{n}" for t, n in pairs
    )
    rid = parse_resource_id(text)
    assert rid.raw == text
    assert (rid.subscription, rid.resource_group, rid.provider) == (subscription, group, namespace)
    assert rid.types == tuple(t for t, _ in pairs)
    assert rid.names == tuple(n for _, n in pairs)
    assert rid == parse_resource_id(text.swapcase())
    assert parse_scope(f"/subscriptions/{subscription}/resourceGroups/{group}").contains(rid)


@settings(max_examples=300)
@given(
    st.one_of(
        st.text(max_size=80),
        st.text(max_size=40).map(lambda s: VM_WEB_1 + s),
        st.text().map(lambda s: "/" + s),
    )
)
def test_any_text_parses_or_raises_invalid_resource_id(text: str) -> None:
    try:
        rid: ResourceId | Scope = parse_resource_id(text)
    except InvalidResourceId:
        pass
    else:
        assert rid.raw == text
        assert text.casefold().startswith("/subscriptions/")
        assert not any(ch in text for ch in "?#%\\ \t\r\n")
        assert "//" not in text
        assert ".." not in text
    try:
        rid = parse_scope(text)
    except InvalidResourceId:
        pass
    else:
        assert rid.raw == text
