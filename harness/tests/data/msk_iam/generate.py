#!/usr/bin/env python3
"""MSK IAM token test vectors, produced by AWS's official Python signer with the clock frozen.

fleetstorm's `driver::auth` unit test (`msk_iam_tokens_equal_the_official_signer`) compares its
tokens with these byte for byte. Rerun (needs PyPI):

    python3 -m venv /tmp/msk-venv
    /tmp/msk-venv/bin/pip install aws-msk-iam-sasl-signer-python==1.0.2 botocore==1.44.8 freezegun==1.5.5
    /tmp/msk-venv/bin/python harness/tests/data/msk_iam/generate.py > harness/tests/data/msk_iam/vectors.json

The credentials are AWS's documentation examples (never valid). Each vector records the signer's
User-Agent (appended after signing, not part of the signature), the token, its expiry (ms since
the Unix epoch, as the signer returns it) and the decoded URL, for reading.
"""

import base64
import importlib.metadata
import json
import sys

from botocore.credentials import Credentials
from freezegun import freeze_time

import aws_msk_iam_sasl_signer.MSKAuthTokenProvider as provider

CASES = [
    {
        "name": "static keys, us-east-1",
        "region": "us-east-1",
        "access_key_id": "AKIDEXAMPLE",
        "secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        "session_token": None,
        "now": "2026-12-02T10:00:00Z",
    },
    {
        "name": "session token (web identity, pod identity, IMDS), eu-west-1",
        "region": "eu-west-1",
        "access_key_id": "ASIAIOSFODNN7EXAMPLE",
        "secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "session_token": "IQoJb3JpZ2luX2VjEXAMPLE//////////wEaCXVzLWVhc3QtMSJHMEUCIQ+sessiontoken==",
        "now": "2026-01-31T23:59:59Z",
    },
    {
        "name": "static keys, ap-southeast-2, a secret with every base64 character",
        "region": "ap-southeast-2",
        "access_key_id": "AKIAI44QH8DHBEXAMPLE",
        "secret_access_key": "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY+/=",
        "session_token": None,
        "now": "2027-03-15T06:07:08Z",
    },
]


def main():
    user_agent = f"{provider.LIB_NAME}/{importlib.metadata.version(provider.LIB_NAME)}"
    out = {
        "generator": "harness/tests/data/msk_iam/generate.py",
        "signer": user_agent,
        "botocore": importlib.metadata.version("botocore"),
        "vectors": [],
    }
    for case in CASES:
        creds = Credentials(case["access_key_id"], case["secret_access_key"], case["session_token"])
        with freeze_time(case["now"]):
            token, expiry_ms = provider._MSKAuthTokenProvider__construct_auth_token(case["region"], creds) \
                if hasattr(provider, "_MSKAuthTokenProvider__construct_auth_token") \
                else getattr(provider, "__construct_auth_token")(case["region"], creds)
        url = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        out["vectors"].append(dict(case, user_agent=user_agent, token=token, expiry_ms=expiry_ms, url=url))
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
