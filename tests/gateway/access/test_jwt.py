"""JWT verification with public keys (RS256 PEM, ES256 JWKS), with real
cryptography: signatures, key ids, claims mapping and the verification cache."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from adapters.errors import AuthenticationError
from gateway.access.auth import JwtVerifier
from gateway.config.access import JwtConfig


def claims(**extra: Any) -> dict[str, Any]:
    return {"sub": "svc", "aud": "gw", "iss": "idp", "exp": int(time.time()) + 300, **extra}


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_keys() -> list[ec.EllipticCurvePrivateKey]:
    return [ec.generate_private_key(ec.SECP256R1()) for _ in range(2)]


def pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def rs256_verifier(tmp_path: Path, key: rsa.RSAPrivateKey) -> JwtVerifier:
    (tmp_path / "idp.pem").write_text(pem(key))
    config = JwtConfig(
        algorithm="RS256", public_key="idp.pem", audience="gw", issuer="idp", leeway=0
    )
    return JwtVerifier(config, tmp_path)


def test_rs256_public_key_maps_claims(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    verifier = rs256_verifier(tmp_path, rsa_key)
    token = jwt.encode(
        claims(model_access="chat, qwen*", rate_limit={"rpm": 5, "tpm": 900}, data_retention=0),
        rsa_key,
        algorithm="RS256",
    )
    principal = verifier.verify(token)
    assert principal.name == "jwt:svc" and principal.kind == "jwt"
    assert principal.access.allows("chat") and principal.access.allows("qwen-7b")
    assert not principal.access.allows("other")
    assert (principal.quota.rpm, principal.quota.tpm) == (5, 900)
    assert principal.data_retention == 0
    assert verifier.verify(token) is principal  # cached until it expires


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda key: jwt.encode(claims(iss="other"), key, "RS256"), "issuer is not trusted"),
        (lambda key: jwt.encode(claims(aud="x"), key, "RS256"), "audience is not this gateway"),
        (
            lambda key: jwt.encode(claims(), rsa.generate_private_key(65537, 2048), "RS256"),
            "signature is invalid",
        ),
        # An HS256 token "signed" with the public key must not pass (algorithm confusion).
        (lambda key: jwt.encode(claims(), b"x" * 32, "HS256"), "The token is invalid."),
        (
            lambda key: jwt.encode(claims(rate_limit={"rpm": -1}), key, "RS256"),
            "'rate_limit' claim must be an object",
        ),
        (
            lambda key: jwt.encode(claims(model_access=[1, 2]), key, "RS256"),
            "'model_access' claim must be a list",
        ),
    ],
    ids=["issuer", "audience", "other-key", "alg-confusion", "bad-rate-limit", "bad-models"],
)
def test_rs256_rejects(tmp_path: Path, rsa_key: rsa.RSAPrivateKey, make: Any, message: str) -> None:
    verifier = rs256_verifier(tmp_path, rsa_key)
    with pytest.raises(AuthenticationError) as caught:
        verifier.verify(make(rsa_key))
    assert message in caught.value.message


def test_es256_jwks_picks_the_key_by_kid(
    tmp_path: Path, ec_keys: list[ec.EllipticCurvePrivateKey]
) -> None:
    jwks = {"keys": []}
    for index, key in enumerate(ec_keys):
        public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
        jwks["keys"].append({**public, "kid": f"k{index}", "alg": "ES256", "use": "sig"})
    (tmp_path / "jwks.json").write_text(json.dumps(jwks))
    verifier = JwtVerifier(JwtConfig(algorithm="ES256", jwks_file="jwks.json"), tmp_path)
    for index, key in enumerate(ec_keys):
        token = jwt.encode(claims(sub=f"s{index}"), key, "ES256", headers={"kid": f"k{index}"})
        assert verifier.verify(token).name == f"jwt:s{index}"
    swapped = jwt.encode(claims(), ec_keys[0], "ES256", headers={"kid": "k1"})
    with pytest.raises(AuthenticationError, match="signature is invalid"):
        verifier.verify(swapped)
    unknown = jwt.encode(claims(), ec_keys[0], "ES256", headers={"kid": "k9"})
    with pytest.raises(AuthenticationError, match="not in the configured JWKS"):
        verifier.verify(unknown)


def test_cached_token_still_expires(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    verifier = rs256_verifier(tmp_path, rsa_key)
    token = jwt.encode(claims(exp=int(time.time()) + 1), rsa_key, "RS256")
    assert verifier.verify(token).name == "jwt:svc"
    expires = jwt.decode(token, options={"verify_signature": False})["exp"]
    time.sleep(max(0.0, expires - time.time()) + 0.05)
    with pytest.raises(AuthenticationError, match="expired"):
        verifier.verify(token)
