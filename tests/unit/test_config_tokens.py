"""The `[api]` section of the configuration file: named tokens as sha256 hashes, scope patterns,
/metrics access and the serve limits; every mistake names its line and key."""

from __future__ import annotations

import hashlib

import pytest

from stream.kpi.config_file import ApiConfig, ApiToken, ConfigError, parse_config
from stream.kpi.scopes import Scope
from stream.readers.auth import Access, hash_token

H1 = hashlib.sha256(b"one").hexdigest()
H2 = hashlib.sha256(b"two").hexdigest()


def parse(text: str) -> ApiConfig:
    return parse_config(text, source="c.toml", kpi_names=None).api


def test_tokens_and_limits_are_read() -> None:
    api = parse(f'''[api]
metrics = "token"
max_stream_clients = 7
stream_write_timeout_seconds = 2.5
[[api.tokens]]
name = "sup"
sha256 = "{H1.upper()}"
scopes = ["campaign:energy-*", "team:north"]
[[api.tokens]]
name = "prom"
sha256 = "{H2}"
scopes = []
metrics = true
''')
    assert api.metrics == "token" and api.max_stream_clients == 7
    assert api.stream_write_timeout_seconds == 2.5 and api.redis_connections == 32
    assert api.tokens == (ApiToken("sup", H1, ("campaign:energy-*", "team:north"), False),
                          ApiToken("prom", H2, (), True))
    assert parse("") == ApiConfig()


@pytest.mark.parametrize(("text", "message"), [
    ('[[api.tokens]]\nname = "a"\nsha256 = "abc"\n', "c.toml:3: api.tokens[0].sha256: must be the token's sha256"),
    (f'[[api.tokens]]\nname = "a"\nsha256 = "{H1}"\nscopes = ["region:x"]\n', "c.toml:4: api.tokens[0].scopes: bad scope pattern 'region:x'"),
    (f'[[api.tokens]]\nname = "a"\nsha256 = "{H1}"\nscope = ["team:x"]\n', "unknown key 'scope' (did you mean 'scopes'?)"),
    (f'[[api.tokens]]\nname = "a"\nsha256 = "{H1}"\n[[api.tokens]]\nname = "a"\nsha256 = "{H2}"\n', "duplicate token name 'a'"),
    (f'[[api.tokens]]\nname = "a"\nsha256 = "{H1}"\n[[api.tokens]]\nname = "b"\nsha256 = "{H1}"\n', "the same token hash as token 'b'"),
    ('[[api.tokens]]\nname = "a"\n', "a token needs sha256"),
    ('[api]\nmetrics = "public"\n', "c.toml:2: api.metrics: must be 'open' or 'token'"),
    ('[api]\nmax_stream_clients = 0\n', "api.max_stream_clients: must be ≥ 1"),
    (f'[[api.tokens]]\nname = "a"\nsha256 = "{H1}"\nmetrics = "yes"\n', "api.tokens[0].metrics: must be true or false"),
])
def test_mistakes_name_the_line_and_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse(text)
    assert message in str(e.value)


def test_patterns_match_whole_ids_and_agents_by_their_live_team() -> None:
    access = Access(parse(f'[[api.tokens]]\nname = "a"\nsha256 = "{hash_token("s3cret")}"\n'
                          'scopes = ["campaign:energy-*", "team:north"]\n'), legacy_token="old")
    grant = access.identify("s3cret")
    assert grant is not None and grant.restricted and not grant.metrics
    assert access.identify("s3cre") is None and access.identify("") is None
    assert grant.sees(Scope("campaign", "energy-uk")) and grant.sees(Scope("team", "north"))
    assert not grant.sees(Scope("campaign", "xenergy-uk")) and not grant.sees(Scope("team", "northwest"))
    assert not grant.sees(Scope("center")) and not grant.sees(Scope("caller_id", "+1555"))
    live = {"a1": {"team": "north"}, "a2": {"team": "south", "campaign": "energy-de"},
            "a3": {"team": "south", "campaign": "solar"}}
    assert [grant.sees(Scope("agent", a), live) for a in ("a1", "a2", "a3", "gone")] == [True, True, False, False]
    legacy = access.identify("old")
    assert legacy is not None and not legacy.restricted and legacy.metrics
    assert access.metrics_open  # the default, "open": Prometheus scrapes as before


def test_without_any_token_everything_is_open() -> None:
    access = Access(ApiConfig())
    assert not access.enabled and access.metrics_open
    grant = access.identify("")
    assert grant is not None and not grant.restricted
