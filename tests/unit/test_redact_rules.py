"""The redaction policy as a table (lab/common/redact.py: RULES, docs/redaction.md): every rule
has a generated test that builds its secret shape and places it in the contexts an output can
hold it in (a log line, a JSON string, a YAML block, a shell line, base64, URL encoding, split
over lines, next to '_', '-', '.'), and proves both that the secret is masked and that nothing
but the secret is: the text around it comes out exactly as it went in.

Where a rule cannot know where a secret ends (a JWT's signature may end in '_'), the test says
so and checks the weaker promise: the secret goes, the text before it stays."""

from __future__ import annotations

import base64
import json
import string
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from lab.common import redact as policy
from lab.common.redact import MASK, RULES, redact, render_rules_markdown
from tests import fuzz

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "redaction.md"

# fixed and database-less: the same examples on every run and every machine
GENERATED = fuzz.fixed(20)


# --- the table -------------------------------------------------------------------------------


def test_docs_redaction_md_is_the_rule_table() -> None:
    assert DOC.read_text() == render_rules_markdown(), (
        "docs/redaction.md differs from lab/common/redact.py: RULES; regenerate it with "
        "`.venv/bin/python -m lab.common.redact > docs/redaction.md`"
    )


def test_a_table_cell_escapes_what_markdown_would_read_and_keeps_the_text_visible(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A backslash, a '|' (a column break) and a line break are shown, not obeyed; a cell is
    code unless it holds a backtick, which would end the code span early."""
    rules = (
        policy.Rule("plain", "a | b or c", "C:\\tmp|x\ny", f"C:\\tmp|{MASK}", redact),
        policy.Rule("ticked", "a `b`", "echo `pw`", f"echo `{MASK}`", redact),
    )
    monkeypatch.setattr(policy, "RULES", rules)
    lines = render_rules_markdown().splitlines()
    rows = lines.index("| --- | --- | --- | --- |") + 1
    assert lines[rows : rows + 3] == [
        "| `plain` | a / b or c | `C:\\\\tmp\\|x⏎y` | `C:\\\\tmp\\|<redacted>` |",
        "| `ticked` | a `b` | echo `pw` | echo `<redacted>` |",
        "",
    ]


def test_every_rule_has_a_name_a_sentence_and_an_example_of_its_own() -> None:
    names = [rule.name for rule in RULES]
    assert len(names) == len(set(names))
    for rule in RULES:
        assert rule.catches
        assert rule.example
        assert MASK in rule.masked


@pytest.mark.parametrize("rule", RULES, ids=[r.name for r in RULES])
def test_each_rules_example_is_printed_as_the_table_says_and_needs_that_rule(
    rule: policy.Rule, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert redact(rule.example) == rule.masked
    monkeypatch.setattr(policy, "RULES", tuple(r for r in RULES if r is not rule))
    assert redact(rule.example) != rule.masked, f"another rule masks {rule.name}'s example"


# --- secrets in context ----------------------------------------------------------------------


@dataclass(frozen=True)
class Carrier:
    """A secret in its shape (`text`), as the policy must print it (`masked`), and the secret
    parts that must not survive."""

    text: str
    masked: str
    secrets: tuple[str, ...]
    # '_' or '-' right after it may be taken for more of the secret (a base64url tail)
    open_end: bool = False


# plain lines around a secret: none ends in a base64 character or holds a secret shape
BENIGN = st.sampled_from(
    [
        "kubelet.service: Started kubelet.",
        'level=info msg="pulled image" pod=web-1.',
        "10.244.1.2 dev cni0 proto kernel (scope link).",
        "[preflight] Running pre-flight checks.",
        "Step 11r: routes to the other nodes' pod subnets.",
    ]
)


def _word(alphabet: str, low: int = 8, high: int = 24) -> st.SearchStrategy[str]:
    plain = ("true", "false", "null", "none")
    return st.text(alphabet=alphabet, min_size=low, max_size=high).filter(
        lambda s: s.lower() not in plain and not s.isdigit() and "eyJ" not in s
    )


ALNUM = string.ascii_letters + string.digits
value = _word(ALNUM + "!#$*+-.^_~")
user = st.sampled_from(["bob", "admin", "ci-robot", "deploy"])
b64 = st.text(alphabet=ALNUM + "+/", min_size=64, max_size=64)
hex64 = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
breaks = st.sampled_from(["\n", "\\\n    ", "\r\n  "])


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@st.composite
def bootstrap_token(draw: st.DrawFn) -> str:
    lower = string.ascii_lowercase + string.digits
    six = draw(st.text(lower, min_size=6, max_size=6))
    return six + "." + draw(st.text(lower, min_size=16, max_size=16))


@st.composite
def pem_private_key(draw: st.DrawFn) -> Carrier:
    kind = draw(st.sampled_from(["", "RSA ", "EC ", "OPENSSH ", "ENCRYPTED "]))
    body = draw(st.lists(b64, min_size=1, max_size=4))
    begin, end = f"-----BEGIN {kind}PRIVATE KEY-----", f"-----END {kind}PRIVATE KEY-----"
    text = "\n".join([begin, *body, end])
    return Carrier(text, f"{begin}\n{MASK}\n{end}", tuple(body))


@st.composite
def pem_body_without_begin(draw: st.DrawFn) -> Carrier:
    body = draw(st.lists(b64, min_size=1, max_size=4))
    last = draw(st.text(ALNUM + "+/", min_size=4, max_size=40)) + "=="
    end = f"-----END {draw(st.sampled_from(['', 'RSA ', 'EC ']))}PRIVATE KEY-----"
    return Carrier("\n".join([*body, last, end]), f"{MASK}\n{end}", (*body, last))


@st.composite
def base64_block(draw: st.DrawFn) -> Carrier:
    width = draw(st.sampled_from([64, 76]))
    lines = draw(
        st.lists(st.text(ALNUM + "+/", min_size=width, max_size=width), min_size=2, max_size=4)
    )
    last = draw(st.text(ALNUM + "+/", min_size=0, max_size=width - 1))
    text = "\n".join([*lines, last]) if last else "\n".join(lines)
    return Carrier(text, MASK, tuple(lines))


@st.composite
def bootstrap(draw: st.DrawFn) -> Carrier:
    token = draw(bootstrap_token())
    if draw(st.booleans()):  # a wrapped terminal line or a shell continuation splits it
        at = draw(st.integers(1, len(token) - 1))
        return Carrier(token[:at] + draw(breaks) + token[at:], MASK, (token, token[7:]))
    return Carrier(token, MASK, (token, token[7:]))


@st.composite
def jwt(draw: st.DrawFn) -> Carrier:
    header = {"alg": draw(st.sampled_from(["RS256", "HS256", "ES256"])), "kid": draw(user)}
    payload = {"iss": "kubernetes/serviceaccount", "sub": f"system:serviceaccount:{draw(user)}"}
    signature = _b64url(draw(st.binary(min_size=32, max_size=256)))
    token = ".".join(
        [_b64url(json.dumps(header).encode()), _b64url(json.dumps(payload).encode()), signature]
    )
    return Carrier(token, MASK, (token, signature), open_end=True)


@st.composite
def certificate_key_line(draw: st.DrawFn) -> Carrier:
    key = draw(hex64)
    head = "[upload-certs] Using certificate key:"
    return Carrier(f"{head}\n{key}", f"{head}\n{MASK}", (key,))


@st.composite
def creds_flag(draw: st.DrawFn) -> Carrier:
    name, password = draw(user), draw(value)
    image = "registry.example:5000/app:1.0"
    text = f"crictl pull --creds {name}:{password} {image}"
    return Carrier(text, f"crictl pull --creds {name}:{MASK} {image}", (password,))


@st.composite
def curl_user(draw: st.DrawFn) -> Carrier:
    flag = draw(st.sampled_from(["-u ", "--user ", "--user=", "-u", "--proxy-user "]))
    name, password = draw(user), draw(value)
    url = "https://10.10.10.241:6443/healthz"
    return Carrier(
        f"curl -fsS {flag}{name}:{password} {url}",
        f"curl -fsS {flag}{name}:{MASK} {url}",
        (password,),
    )


@st.composite
def login_password(draw: st.DrawFn) -> Carrier:
    tool = draw(st.sampled_from(["docker", "podman", "nerdctl", "helm registry"]))
    sep = draw(st.sampled_from([" ", "=", ""]))
    password = draw(value.filter(lambda s: not s.startswith("-")))
    head = f"{tool} login -u {draw(user)} -p{sep}"
    return Carrier(
        f"{head}{password} registry.example", f"{head}{MASK} registry.example", (password,)
    )


@st.composite
def secret_flag(draw: st.DrawFn) -> Carrier:
    flag = draw(
        st.sampled_from(
            ["--password", "--discovery-token", "--db-password", "--client-secret", "--auth"]
        )
    )
    sep = draw(st.sampled_from([" ", "=", "\t", " \\\n    "]))
    secret = draw(value)
    head = f"kubeadm join 10.10.10.241:6443 {flag}{sep}"
    return Carrier(
        f"{head}{secret} --node-name k8s-node1", f"{head}{MASK} --node-name k8s-node1", (secret,)
    )


@st.composite
def authorization_header(draw: st.DrawFn) -> Carrier:
    scheme = draw(st.sampled_from(["Bearer", "Basic", "Token", "bearer"]))
    secret = draw(_word(ALNUM + "+/=._-"))
    head = f"Authorization: {scheme} "
    return Carrier(f"{head}{secret}", f"{head}{MASK}", (secret,))


@st.composite
def bearer(draw: st.DrawFn) -> Carrier:
    secret = draw(_word(ALNUM + "._~+/-"))
    return Carrier(
        f"retrying with Bearer {secret} now", f"retrying with Bearer {MASK} now", (secret,)
    )


@st.composite
def url_userinfo(draw: st.DrawFn) -> Carrier:
    """A password with any reserved character: '/', '@', ':', '?', '#', %XX. One shape is
    ambiguous and left out (docs/redaction.md): an '@' followed by a host name with a dot
    (`p@evil.example/x@host`); these pieces hold no dot."""
    pieces = draw(
        st.lists(
            st.sampled_from([*"abcXYZ019", "/", "@", ":", "?", "#", "%40", "%2F", "!", "$", "~"]),
            min_size=6,
            max_size=16,
        )
    )
    password = "".join(pieces)
    scheme = draw(st.sampled_from(["https", "http", "git+https", "oci"]))
    host = draw(
        st.sampled_from(["git.example", "10.10.10.241:8443", "[fd00::1]", "mirrors.example.org"])
    )
    path = draw(st.sampled_from(["", "/", "/repo.git", "/v2/?tag=1"]))
    name = draw(user)
    return Carrier(
        f"{scheme}://{name}:{password}@{host}{path}",
        f"{scheme}://{MASK}@{host}{path}",
        (f"{name}:{password}",),
    )


@st.composite
def url_query_secret(draw: st.DrawFn) -> Carrier:
    name = draw(st.sampled_from(["access_token", "token", "password", "sig", "api_key"]))
    secret = draw(_word(ALNUM + "-._~", 12, 30))
    if draw(st.booleans()):
        head = f"https://api.example/v1/watch?{name}="
        return Carrier(f"{head}{secret}&page=2", f"{head}{MASK}&page=2", (secret,))
    return Carrier(f"{name}%3D{secret}%26page%3D2", f"{name}%3D{MASK}%26page%3D2", (secret,))


@st.composite
def basic_auth_csv(draw: st.DrawFn) -> Carrier:
    password = draw(_word(ALNUM + "!#$*+-.^_~", 8, 20))
    rest = f",{draw(user)},{draw(st.integers(0, 65535))}"
    rest += draw(st.sampled_from(["", ',"system:masters"', ',"group1,group2"']))
    return Carrier(password + rest, MASK + rest, (password,))


ENV_SECRETS = [
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ACCESS_KEY_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_STORAGE_KEY",
    "GOOGLE_API_KEY",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "DB_PASSWORD",
    "GITHUB_TOKEN",
    "REGISTRY_SECRET_VALUE",
]


@st.composite
def env_entry(draw: st.DrawFn) -> Carrier:
    var, secret = draw(st.sampled_from(ENV_SECRETS)), draw(value)
    if draw(st.booleans()):
        head = f"- name: {var}\n  value: "
        return Carrier(head + secret, head + MASK, (secret,))
    head = f'{{"name": "{var}", "value": "'
    return Carrier(f'{head}{secret}"}}', f'{head}{MASK}"}}', (secret,))


@st.composite
def secret_key_value(draw: st.DrawFn) -> Carrier:
    secret = draw(value)
    auth = base64.b64encode(f"{draw(user)}:{secret}".encode()).decode()
    forms = [
        ("password: {v}", secret),
        ('"token": "{v}"', secret),
        ("client_secret = {v}", secret),
        ("{env}={v}", secret),
        ("export {env}='{v}'", secret),
        ('{{"auths": {{"registry.example": {{"auth": "{v}"}}}}}}', auth),
        ("  .dockerconfigjson: {v}", auth),
    ]
    form, shown = draw(st.sampled_from(forms))
    env = draw(st.sampled_from(ENV_SECRETS))
    return Carrier(form.format(v=shown, env=env), form.format(v=MASK, env=env), (shown, secret))


@st.composite
def base64_wrapped(draw: st.DrawFn) -> Carrier:
    token = draw(bootstrap_token())
    inner = draw(
        st.sampled_from(
            [
                f"kubeadm join 10.10.10.241:6443 --token {token} --discovery-token-ca-cert-hash "
                f"sha256:{'0' * 64}",
                f'{{"auths": {{"r.example": {{"auth": "{token}"}}}}}}',
                f"users:\n- name: admin\n  user:\n    token: {token}\n",
            ]
        )
    )
    encoded = base64.b64encode(inner.encode()).decode()
    return Carrier(encoded, MASK, (encoded, token))


@st.composite
def percent_encoded(draw: st.DrawFn) -> Carrier:
    name, password = draw(user), draw(_word(ALNUM, 8, 16))
    inner = urllib.parse.quote(f"https://{name}:{password}@git.example/r.git", safe="")
    head = "https://sso.example/login?next="
    return Carrier(f"{head}{inner}&x=1", f"{head}{MASK}&x=1", (password,))


# --- contexts ----------------------------------------------------------------------------------

Placed = tuple[str, str | None, tuple[str, ...]]  # text, exact output (or None), what stays


def in_lines(c: Carrier, before: str, after: str) -> Placed:
    return f"{before}\n{c.text}\n{after}", f"{before}\n{c.masked}\n{after}", ()


def in_json(c: Carrier, before: str, after: str) -> Placed:
    def esc(s: str) -> str:
        return json.dumps(s)[1:-1]

    head, tail = '{"node": "k8s-node1", "log": "', '", "seq": 3}'
    return f"{head}{esc(c.text)}{tail}", f"{head}{esc(c.masked)}{tail}", ()


def in_yaml(c: Carrier, before: str, after: str) -> Placed:
    def block(s: str) -> str:
        return "\n".join("  " + line for line in s.split("\n"))

    head, tail = "kind: ConfigMap\ndata:\n log: |\n", "\nmetadata:\n  name: x"
    return f"{head}{block(c.text)}{tail}", f"{head}{block(c.masked)}{tail}", ()


def in_shell(c: Carrier, before: str, after: str) -> Placed:
    head, tail = "$ sudo -n ", " && echo done"
    return f"{head}{c.text}{tail}", f"{head}{c.masked}{tail}", ()


def in_base64(c: Carrier, before: str, after: str) -> Placed:
    encoded = base64.b64encode(c.text.encode()).decode()
    return f"echo {encoded} | base64 -d", f"echo {MASK} | base64 -d", ()


def in_url(c: Carrier, before: str, after: str) -> Placed:
    """URL-encoded in another URL's parameter: the parameter's value may go whole."""
    head, tail = "https://sso.example/cb?state=1&log=", "&page=2"
    return f"{head}{urllib.parse.quote(c.text, safe='')}{tail}", None, (head, tail)


def next_to(left: str, right: str) -> Callable[[Carrier, str, str], Placed]:
    def place(c: Carrier, before: str, after: str) -> Placed:
        text = f"id{left}{c.text}{right}old"
        if c.open_end and right in "_-":
            return text, None, (f"id{left}",)
        return text, f"id{left}{c.masked}{right}old", ()

    return place


LINE, JSON, YAML, SHELL, B64, URL = in_lines, in_json, in_yaml, in_shell, in_base64, in_url
NEXT_TO = [next_to(a, b) for a in "_-." for b in "_-."]

# each rule's secret shape and the contexts it is promised in
Context = Callable[[Carrier, str, str], Placed]
SHAPES: dict[str, tuple[st.SearchStrategy[Carrier], list[Context]]] = {
    "pem-private-key": (pem_private_key(), [LINE, JSON, YAML]),
    "pem-body-without-begin": (pem_body_without_begin(), [LINE, JSON, YAML]),
    "base64-block": (base64_block(), [LINE, JSON, YAML]),
    "bootstrap-token": (bootstrap(), [LINE, YAML, SHELL, B64, URL, *NEXT_TO]),
    "jwt": (jwt(), [LINE, JSON, YAML, SHELL, URL, *NEXT_TO]),
    "certificate-key-line": (certificate_key_line(), [LINE, JSON, YAML, B64]),
    "creds-flag": (creds_flag(), [LINE, JSON, YAML, SHELL, B64, URL]),
    "curl-user": (curl_user(), [LINE, JSON, YAML, SHELL, B64, URL]),
    "login-password": (login_password(), [LINE, JSON, YAML, SHELL, B64, URL]),
    "secret-flag": (secret_flag(), [LINE, YAML, SHELL, URL]),
    "authorization-header": (authorization_header(), [LINE, JSON, YAML, B64, URL]),
    "bearer": (bearer(), [LINE, JSON, YAML, SHELL, B64, URL]),
    "url-userinfo": (url_userinfo(), [LINE, JSON, YAML, SHELL, B64, URL, *NEXT_TO[:3]]),
    "url-query-secret": (url_query_secret(), [LINE, JSON, YAML, SHELL]),
    "basic-auth-csv": (basic_auth_csv(), [LINE, YAML, B64]),
    "env-entry": (env_entry(), [LINE, YAML, B64]),
    "secret-key-value": (secret_key_value(), [LINE, JSON, YAML, B64]),
    "base64-wrapped": (base64_wrapped(), [LINE, JSON, YAML, SHELL]),
    "percent-encoded": (percent_encoded(), [LINE, JSON, YAML, SHELL]),
}


def test_every_rule_has_a_generated_test() -> None:
    assert sorted(SHAPES) == sorted(rule.name for rule in RULES)


def _forms(secret: str) -> set[str]:
    """A secret as it may show: itself, URL-encoded, JSON-escaped."""
    return {secret, urllib.parse.quote(secret, safe=""), json.dumps(secret)[1:-1]}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_a_rules_secret_is_masked_in_every_context_and_nothing_else_is(name: str) -> None:
    shape, contexts = SHAPES[name]

    @GENERATED
    @given(shape, st.sampled_from(contexts), BENIGN, BENIGN)
    def check(
        carrier: Carrier,
        context: Context,
        before: str,
        after: str,
    ) -> None:
        around = carrier.masked + before + after
        assume(not any(secret in around for secret in carrier.secrets))  # noise is no secret
        assert redact(carrier.text) == carrier.masked, "the shape alone"
        text, expected, stays = context(carrier, before, after)
        out = redact(text)
        for secret in carrier.secrets:
            for form in _forms(secret):
                assert form not in out, f"{form!r} survived in {out!r}"
        if expected is not None:
            assert out == expected, "something else than the secret was masked"
        for piece in stays:
            assert piece in out, f"{piece!r} was masked in {out!r}"
        assert redact(out) == out, "masking is idempotent"

    check()


# --- the shapes issue 30 named, one by one ------------------------------------------------------

TOKEN = "7x3kq9.vb2n8m4p6r1t5w0z"
JWT = (
    "eyJhbGciOiJSUzI1NiIsImtpZCI6IkZha2UifQ.eyJpc3MiOiJrdWJlcm5ldGVzL3NlcnZpY2VhY2NvdW50In0"
    ".U2lnbmF0dXJlT2ZBRmFrZVRva2VuX3Rlc3Q"
)
AUTH = base64.b64encode(b"bob:S3cr3t-pw").decode()


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (
            f'{{"auths": {{"registry.example": {{"auth": "{AUTH}"}}}}}}',
            f'{{"auths": {{"registry.example": {{"auth": "{MASK}"}}}}}}',
        ),
        (
            json.dumps({"data": json.dumps({"auths": {"r": {"auth": AUTH}}})}),
            json.dumps({"data": json.dumps({"auths": {"r": {"auth": MASK}}})}),
        ),
        (
            "  .dockerconfigjson: "
            + base64.b64encode(json.dumps({"auths": {"r": {"auth": AUTH}}}).encode()).decode(),
            f"  .dockerconfigjson: {MASK}",
        ),
        ("crictl pull --creds bob:S3cr3t-pw r/a:1", f"crictl pull --creds bob:{MASK} r/a:1"),
        ("docker login -p S3cr3t-pw r.example", f"docker login -p {MASK} r.example"),
        ("docker login --password S3cr3t-pw r", f"docker login --password {MASK} r"),
        ("docker login --password=S3cr3t-pw r", f"docker login --password={MASK} r"),
        ("curl -u bob:S3cr3t-pw https://x/", f"curl -u bob:{MASK} https://x/"),
        ("curl --user bob:S3cr3t-pw https://x/", f"curl --user bob:{MASK} https://x/"),
        ('S3cr3t-pw,admin,1000,"system:masters"', f'{MASK},admin,1000,"system:masters"'),
        (f"{JWT}\n", f"{MASK}\n"),
        (f"token {JWT} used", f"token {MASK} used"),
        (f"%3D{JWT}%26x=1", f"%3D{MASK}%26x=1"),  # right after a %XX escape: a JWT starts there
        (f"log%3a{JWT}", f"log%3a{MASK}"),
        (
            "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n"
            "c2VjcmV0a2V5Ym9keWxpbmUy\n-----END PRIVATE KEY-----",
            f"{MASK}\n-----END PRIVATE KEY-----",
        ),
        ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG", f"AWS_SECRET_ACCESS_KEY={MASK}"),
        ("export AWS_SESSION_TOKEN=FQoGZXIvYXdzEJr", f"export AWS_SESSION_TOKEN={MASK}"),
        ("AZURE_CLIENT_SECRET=abc~Def.123", f"AZURE_CLIENT_SECRET={MASK}"),
        ("GOOGLE_API_KEY=AIzaSyA-fake", f"GOOGLE_API_KEY={MASK}"),
        ("https://x/cb?code=1&token%3Dabcdef123456", f"https://x/cb?code=1&token%3D{MASK}"),
        (f"{TOKEN}_backup", f"{MASK}_backup"),
        (
            "echo "
            + base64.b64encode(f"kubeadm join 10.10.10.241:6443 --token {TOKEN}".encode()).decode()
            + " | base64 -d | sh",
            f"echo {MASK} | base64 -d | sh",
        ),
        ("https://bob:pa/ss@mirror.example/repo/", f"https://{MASK}@mirror.example/repo/"),
        ("https://bob:p@ss:w?rd#1@mirror.example/", f"https://{MASK}@mirror.example/"),
    ],
    ids=[
        *("docker-auth", "docker-auth-escaped", "dockerconfigjson", "crictl-creds", "login-p"),
        *("login-password", "login-password-eq", "curl-u", "curl-user", "basic-auth-csv"),
        *("jwt-alone", "jwt-inline", "jwt-after-escape", "jwt-after-lowercase-escape"),
        *("pem-without-begin", "aws-secret"),
        "aws-session",
        *("azure-secret", "google-api-key", "url-encoded-token", "token-underscore"),
        *("join-in-base64", "userinfo-slash", "userinfo-reserved"),
    ],
)  # fmt: skip
def test_the_shapes_issue_30_found_leaking_are_masked(text: str, masked: str) -> None:
    assert redact(text) == masked


@pytest.mark.parametrize(
    "public",
    [
        "https://mirror.example:8080/path?email=ops@example.org",
        "https://mirror.example/pkg/@v/list",
        "certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t",
        f"-----BEGIN CERTIFICATE-----\n{'QUJD' * 16}\n{'REVG' * 16}\n-----END CERTIFICATE-----",
        "image: quay.io/coreos/flannel:v0.14.0@sha256:" + "ab" * 32,
        "taskset -c 0,1,2 true",
        "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
        "docker run -p 8080:80 nginx",
        "ssh -p 2222 vagrant@10.10.10.241",
        "authorship: someone",
    ],
)  # fmt: skip
def test_what_only_looks_like_a_new_shape_stays(public: str) -> None:
    assert redact(public) == public


# --- bounded: adversarial text costs time in proportion to its size -------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "a." * 50_000,
        "-eyJ" * 25_000,
        "https://a@" * 10_000,
        "https://" * 12_000,
        "--" * 50_000,
        "a=" * 50_000,
        "a%3D" * 25_000,
        "docker " * 14_000,
        ("QUJD" * 16 + "\n") * 1500 + "-----END PRIVATE KEY-----",
        '"token": "' * 10_000,
        "A_" * 50_000 + "=",
    ],
    ids=lambda t: repr(t[:8]),
)
def test_redaction_of_adversarial_text_is_bounded(text: str) -> None:
    start = time.monotonic()
    redact(text)
    assert time.monotonic() - start < 3.0  # about 0.1 s each on one core


# --- a PEM block is public by its own armour: the BEGIN line just above, or the END just below --

PEM_BODY = f"{'QUJD' * 16}\n{'REVG' * 16}"


@pytest.mark.parametrize(
    "text",
    [
        f"-----BEGIN CERTIFICATE-----\n{PEM_BODY}\n",  # its END line not (yet) there
        f"x: 1\n{PEM_BODY}\n-----END CERTIFICATE-----",  # its BEGIN line out of the text
        f'"-----BEGIN PUBLIC KEY-----\\n{PEM_BODY}\\n"',  # an escaped newline, quoted
        f'-----BEGIN CERTIFICATE-----"\n{PEM_BODY}',  # a quote between
        f"-----BEGIN CERTIFICATE-----{' ' * 172}\n{PEM_BODY}",  # BEGIN within 200 characters
        f"{PEM_BODY}\n{' ' * 174}-----END CERTIFICATE-----",  # END within 200 below
    ],
)
def test_a_certificate_or_public_key_block_stays_by_either_armour_line(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize(
    "text",
    [
        f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n-----END RSA PRIVATE KEY-----",
        f"-----BEGIN CERTIFICATE-----\nkey: 1\n{PEM_BODY}\n",  # not just above it
        f"-----BEGIN CERTIFICATE-----X\n{PEM_BODY}",  # a letter between
        f"{PEM_BODY}\n-----END RSA PRIVATE KEY-----",  # a key's tail, its BEGIN cut off
        f"{PEM_BODY}\nkey: 1\n-----END CERTIFICATE-----",  # not just below it
        f"-----BEGIN CERTIFICATE-----{' ' * 173}\n{PEM_BODY}",  # 201 characters up
        f"{PEM_BODY}\n{' ' * 175}-----END CERTIFICATE-----",  # 201 below
        f"-----END CERTIFICATE-----\n{PEM_BODY}\n-----BEGIN CERTIFICATE-----",  # the wrong sides
    ],
)
def test_a_private_key_or_a_block_away_from_its_armour_is_masked(text: str) -> None:
    assert redact(text) != text
    assert PEM_BODY.split("\n", maxsplit=1)[0] not in redact(text)
