"""The redaction policy (lab/common/redact.py): every secret shape the harness can print, generated
inside random text, leaves nothing behind; realistic admin.conf and `kubeadm init
--upload-certs` output come out clean; what is public (CA data, the CA cert hash) stays."""

from __future__ import annotations

import base64
import logging
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from lab.common.commands import render_remote
from lab.common.redact import MASK, RedactFilter, redact
from tests import fuzz

SECRETS = Path(__file__).resolve().parents[1] / "data" / "secrets"
# the fake material in tests/data/secrets (see its README)
TOKEN = "7x3kq9.vb2n8m4p6r1t5w0z"
CERT_KEY = "ba2ac48cfec6e9884d7da9412c63c662e27c8787288993d68ccfa4d1765d9c13"

FUZZ = settings(
    max_examples=fuzz.examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

lower_alnum = st.text(alphabet=string.ascii_lowercase + string.digits, min_size=1, max_size=1)
b64_alphabet = string.ascii_letters + string.digits + "+/"
# random text around a secret; it meets the secret at a realistic delimiter
noise = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60)
delimiter = st.sampled_from([" ", "\n", "\t", "(", ", ", "; ", "\r\n", "> ", "|"])


@st.composite
def bootstrap_token(draw: st.DrawFn) -> str:
    return (
        draw(st.text(alphabet=string.ascii_lowercase + string.digits, min_size=6, max_size=6))
        + "."
        + draw(st.text(alphabet=string.ascii_lowercase + string.digits, min_size=16, max_size=16))
    )


hex64 = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
b64_blob = st.text(alphabet=b64_alphabet, min_size=24, max_size=200).map(
    lambda s: s + "=" * (-len(s) % 4)
)
password = st.text(
    alphabet=string.ascii_letters + string.digits + "!#$%()*+-.;<>?[]^_{|}~",
    min_size=8,
    max_size=30,
).filter(lambda s: s.lower() not in ("true", "false", "null", "none"))


def _split(secret: str, at: int, brk: str) -> str:
    at = 1 + at % (len(secret) - 1)
    return secret[:at] + brk + secret[at:]


@st.composite
def placed(draw: st.DrawFn) -> tuple[str, list[str]]:
    """(a text that holds a secret in one of the shapes of the policy, the secret parts that
    must not survive)."""
    kind = draw(st.integers(0, 13))
    case = draw(st.sampled_from([str.lower, str.upper, str.title, lambda s: s]))
    if kind == 0:  # a bare bootstrap token, maybe split across lines
        token = draw(bootstrap_token())
        brk = draw(st.sampled_from(["", "\n", "\\\n    ", "\r\n  "]))
        text = _split(token, draw(st.integers(0, 100)), brk) if brk else token
        return text, [token, token.split(".")[1]]
    if kind == 1:  # a flag carrying a token or password, any case, any separator
        flag = case(
            draw(
                st.sampled_from(
                    [
                        "--token",
                        "--password",
                        "--discovery-token",
                        "--tls-bootstrap-token",
                        "--docker-password",
                        "--client-secret",
                    ]
                )
            )
        )
        sep = draw(st.sampled_from([" ", "=", "\t", "  ", " \\\n  "]))
        value = draw(password)
        return f"{flag}{sep}{value}", [value]
    if kind == 2:  # the certificate key after its flag
        key = draw(hex64)
        sep = draw(st.sampled_from([" ", "=", "\t", " \\\n    "]))
        return f"--certificate-key{sep}{key}", [key]
    if kind == 3:  # kubeadm's "Using certificate key:" and the key on the next line
        key = draw(hex64)
        return f"[upload-certs] Using certificate key:\n{key}\n", [key]
    if kind == 4:  # a kubeconfig's client data and token, YAML or JSON
        key = draw(st.sampled_from(["client-key-data", "client-certificate-data", "token"]))
        value = draw(b64_blob)
        form = draw(st.sampled_from(["{k}: {v}", '"{k}": "{v}"', "{k}: '{v}'", '"{k}":"{v}"']))
        return form.format(k=key, v=value), [value]
    if kind == 5:  # a PEM private key block, maybe cut before its END line
        body = draw(
            st.lists(
                st.text(alphabet=b64_alphabet, min_size=64, max_size=64), min_size=1, max_size=5
            )
        )
        kind_word = draw(st.sampled_from(["", "RSA ", "EC ", "ENCRYPTED ", "OPENSSH "]))
        end = draw(st.sampled_from([f"\n-----END {kind_word}PRIVATE KEY-----", ""]))
        text = f"-----BEGIN {kind_word}PRIVATE KEY-----\n" + "\n".join(body) + end
        return text, body
    if kind == 6:  # a bootstrap-token Secret's token-secret, plain or base64
        secret = draw(
            st.text(alphabet=string.ascii_lowercase + string.digits, min_size=16, max_size=16)
        )
        value = draw(st.sampled_from([secret, base64.b64encode(secret.encode()).decode()]))
        form = draw(st.sampled_from(["  token-secret: {v}", '"token-secret": "{v}"']))
        return form.format(v=value), [value]
    if kind == 7:  # an Authorization header
        token = draw(b64_blob)
        scheme = draw(st.sampled_from(["Bearer", "bearer", "Basic", "BEARER"]))
        header = draw(st.sampled_from(["Authorization: ", "authorization=", '"Authorization": "']))
        return f"{header}{scheme} {token}", [token]
    if kind == 8:  # URL userinfo
        user = draw(
            st.text(alphabet=string.ascii_letters + string.digits + "._~-", min_size=1, max_size=12)
        )
        pw = draw(
            st.text(
                alphabet=string.ascii_letters + string.digits + "._~-!$%", min_size=6, max_size=20
            )
        )
        scheme = draw(st.sampled_from(["https", "http", "git+https", "oci"]))
        return f"{scheme}://{user}:{pw}@mirrors.example.org/repo/", [f"{user}:{pw}", pw]
    if kind == 9:  # certificateKey in a kubeadm config
        key = draw(hex64)
        form = draw(
            st.sampled_from(
                ['certificateKey: "{k}"', "certificateKey: {k}", "  certificateKey: '{k}'"]
            )
        )
        return form.format(k=key), [key]
    if kind == 10:  # a password in a config file or the environment
        key = draw(
            st.sampled_from(
                ["password", "DOCKER_PASSWORD", "registry_password", "Passwd", "client_secret"]
            )
        )
        value = draw(password)
        form = draw(st.sampled_from(["{k}: {v}", "{k}={v}", '"{k}": "{v}"', "export {k}='{v}'"]))
        return form.format(k=key, v=value), [value]
    if kind == 11:  # a join command printed by kubeadm token create --print-join-command
        token = draw(bootstrap_token())
        return (
            f"kubeadm join 10.10.10.241:6443 --token {token} --discovery-token-ca-cert-hash "
            f"sha256:{'0' * 64}",
            [token],
        )
    if kind == 12:  # a JSON-escaped PEM inside a JSON document
        body = draw(st.text(alphabet=b64_alphabet, min_size=40, max_size=64))
        return (
            f'{{"key": "-----BEGIN PRIVATE KEY-----\\n{body}\\n-----END PRIVATE KEY-----\\n"}}',
            [body],
        )
    # 13: HTML-escaped JSON in the nightly summary
    value = draw(password.filter(lambda s: "&" not in s and "<" not in s and ">" not in s))
    return f"&quot;token&quot;: &quot;{value}&quot;", [value]


@FUZZ
@given(placed(), noise, delimiter, noise, delimiter)
def test_no_secret_shape_survives_inside_random_text(
    shaped: tuple[str, list[str]], before: str, d1: str, after: str, d2: str
) -> None:
    text, parts = shaped
    assume(not any(part in before + after for part in parts))  # the noise is no secret
    out = redact(before + d1 + text + d2 + after)
    for part in parts:
        assert part not in out, f"{part!r} survived in {out!r}"
    assert redact(out) == out, "redaction is idempotent"


@FUZZ
@given(st.text(max_size=300))
def test_redaction_never_fails_and_is_idempotent_on_any_text(text: str) -> None:
    once = redact(text)
    assert redact(once) == once


@FUZZ
@given(st.text(alphabet=string.ascii_letters + string.digits, min_size=4, max_size=40), noise)
def test_an_explicit_secret_and_its_base64_forms_are_masked(secret: str, around: str) -> None:
    b64 = base64.b64encode(secret.encode()).decode()
    out = redact(f"{around} {secret} {b64} {b64.rstrip('=')} {around}", secrets=(secret,))
    assert secret not in out.replace(MASK, "")
    assert b64.rstrip("=") not in out


def test_a_realistic_admin_conf_keeps_no_client_credential() -> None:
    text = (SECRETS / "admin.conf").read_text()
    out = redact(text)
    key_pem = (SECRETS / "admin.conf.key.pem").read_text()
    for line in text.splitlines():
        if line.strip().startswith(("client-certificate-data:", "client-key-data:", "token:")):
            value = line.split(":", 1)[1].strip()
            assert value not in out
            assert value[:40] not in out
    for line in key_pem.splitlines()[1:-1]:
        assert line not in out
    # what a person needs to read it stays: the server, the names, the public CA data
    assert "server: https://10.10.10.241:6443" in out
    assert "certificate-authority-data: LS0t" in out
    assert out.count(MASK) == 3


def test_a_realistic_kubeadm_init_upload_certs_output_keeps_no_token_or_key() -> None:
    text = (SECRETS / "kubeadm-init-upload-certs.txt").read_text()
    assert TOKEN in text
    assert CERT_KEY in text
    out = redact(text)
    assert TOKEN not in out
    assert TOKEN.split(".")[1] not in out
    assert CERT_KEY not in out
    assert "--discovery-token-ca-cert-hash sha256:" in out, "the public CA pin stays"
    assert "[upload-certs] Using certificate key:\n<redacted>\n" in out
    assert "[bootstrap-token] Using token: <redacted>" in out
    assert out.count("--control-plane --certificate-key <redacted>") == 1


def test_a_bootstrap_token_secret_keeps_its_id_and_loses_its_secret() -> None:
    text = (SECRETS / "bootstrap-token-secret.yaml").read_text()
    secret_b64 = base64.b64encode(TOKEN.split(".")[1].encode()).decode()
    assert secret_b64 in text
    out = redact(text)
    assert secret_b64 not in out
    assert "token-secret: <redacted>" in out
    assert "token-id: " + base64.b64encode(b"7x3kq9").decode() in out


def test_a_kubeadm_config_with_a_certificate_key_and_bootstrap_tokens() -> None:
    config = (
        "apiVersion: kubeadm.k8s.io/v1beta2\nkind: InitConfiguration\nbootstrapTokens:\n"
        f'- token: "{TOKEN}"\n  ttl: 24h0m0s\ncertificateKey: "{CERT_KEY}"\n'
        "nodeRegistration:\n  name: k8s-master\n"
    )
    out = redact(config)
    assert TOKEN not in out
    assert CERT_KEY not in out
    assert "ttl: 24h0m0s" in out
    assert "name: k8s-master" in out


@pytest.mark.parametrize(
    "public",
    [
        "--discovery-token-ca-cert-hash sha256:" + "ab" * 32,
        "image: quay.io/coreos/flannel@sha256:" + "cd" * 32,
        "manifest_sha256: " + "ef" * 32,
        "automountServiceAccountToken: false",
        "kubeadm token create --ttl 2h --print-join-command",
        "secret:\n  secretName: kubeadm-certs",
        "https://mirrors.aliyun.com/kubernetes/yum/repos/kubernetes-el7-x86_64/",
        "--token-ttl 0 --node-name k8s-node1",
    ],
)
def test_what_is_public_stays_readable(public: str) -> None:
    assert redact(public) == public


def test_log_records_are_redacted_by_the_filter() -> None:
    record = logging.LogRecord(
        "lab", logging.INFO, __file__, 1, "joining with %s", (f"--token {TOKEN}",), None
    )
    assert RedactFilter().filter(record)
    assert record.getMessage() == "joining with --token <redacted>"


JOIN_TOKEN = "io1pa7.pp3wbn8i4hbi7ktn"
JOIN_CERT_KEY = "b98b6165eafb91dd690bb693a8e2f57f6043865fcf75da68aa1a3b6b61ac3ca9"
JOIN = (
    f"kubeadm join 10.10.10.241:6443 --token {JOIN_TOKEN} --discovery-token-ca-cert-hash "
    "sha256:e9dd69f71312e61280d6d3a257f811135b43dea7e62fd667478bb776af16737d"
)


@pytest.mark.parametrize(
    "text",
    [
        JOIN,
        f"kubeadm join --token={JOIN_TOKEN} --certificate-key {JOIN_CERT_KEY}",
        f'{{"token": "{JOIN_TOKEN}"}}',
    ],
)
def test_join_tokens_and_certificate_keys_are_redacted(text: str) -> None:
    out = redact(text)
    assert JOIN_TOKEN not in out
    assert JOIN_CERT_KEY not in out
    assert MASK in out


def test_explicit_secrets_are_redacted_even_without_a_known_shape() -> None:
    assert redact("password=hunter2", secrets=("hunter2",)) == f"password={MASK}"


def test_a_join_command_is_redacted_in_the_printed_plan_logs_and_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from lab.adapters.ssh import SshChannel
    from lab.common.errors import CommandFailed
    from lab.hosts.parse import SshTarget
    from lab.model.labfile import load_lab
    from provision import el7
    from provision.steps import PlannedStep, render_plan

    lab = load_lab("labs/guide-centos7.yaml")
    node = lab.node("k8s-node1")
    facts = el7.JoinFacts(False, tuple(JOIN.split()))
    (command,) = el7.plan_join(lab, node, facts)
    assert JOIN_TOKEN in command.argv, "the real command carries the token"
    printed = render_plan(node, [PlannedStep(el7.JOIN, (command,))])
    assert JOIN_TOKEN not in printed
    assert MASK in printed
    failure = CommandFailed(
        render_remote(command),
        1,
        stdout=f"using token {JOIN_TOKEN}",
        where="k8s-node1",
        secrets=command.secrets,
    )
    assert JOIN_TOKEN not in str(failure)
    log = tmp_path / "node.log"
    ssh = SshChannel("guide-centos7", "k8s-node1", SshTarget("k8s-node1", "h", 22, "u", ()), log)
    ssh._log(render_remote(command), 0, f"token {JOIN_TOKEN} accepted", "", command.secrets)
    assert JOIN_TOKEN not in log.read_text()
    assert MASK in log.read_text()


def test_a_known_secret_goes_with_its_base64_forms_from_four_characters_on() -> None:
    # base64 and its padding-less form; base64url too ('/' and '+' as '_' and '-')
    assert redact("x abcd YWJjZA== YWJjZA x", secrets=("abcd",)) == (f"x {MASK} {MASK} {MASK} x")
    assert redact("a cHc/Pz4+ cHc_Pz4- b", secrets=("pw??>>",)) == f"a {MASK} {MASK} b"
    # three characters encode to four that too much ordinary text holds: only the secret goes
    assert redact("abc YWJj", secrets=("abc",)) == f"{MASK} YWJj"
    assert redact("a b", secrets=("",)) == "a b", "an empty secret masks nothing"


def test_known_secrets_that_overlap_are_one_mask() -> None:
    assert redact("xabcdefghiy", secrets=("abcdef", "defghi")) == f"x{MASK}y"
    assert redact("xabcdefy abcdef", secrets=("abcdef", "bcd")) == f"x{MASK}y {MASK}"


def test_only_a_whole_base64_form_of_a_known_secret_is_masked() -> None:
    # "passaW" is cGFzc2FX in base64; a text one character off is no form of it
    assert redact("id cGFzc2FX ok", secrets=("passaW",)) == f"id {MASK} ok"
    assert redact("id cGFzc2FY ok", secrets=("passaW",)) == "id cGFzc2FY ok"
