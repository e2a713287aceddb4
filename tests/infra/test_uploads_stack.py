"""The uploads bucket in the synthesised template: private, TLS only, encrypted, expiring, and reachable only by
the functions the topology grants it to, each only under the uploads prefix."""

from __future__ import annotations

from typing import Any

import pytest
from infra_synthesis import Synthesis, synthesize
from interlock.topology import TOPOLOGY, UPLOADS_BUCKET, Access, DeploymentSettings
from test_stack import _listify, _refs_in, role_lid_of_function, statements_of_role

pytestmark = pytest.mark.infra


def bucket_lid(s: Synthesis) -> str:
    (lid,) = s.of_type("AWS::S3::Bucket")
    return lid


def s3_statements(s: Synthesis, function: str) -> list[dict[str, Any]]:
    return [st for st in statements_of_role(s, role_lid_of_function(s, function))
            if any(a.startswith("s3:") for a in _listify(st["Action"]))]


def test_given_the_topology_when_synthesised_then_one_private_encrypted_tls_only_bucket(synthesis: Synthesis) -> None:
    assert synthesis.error is None, synthesis.error  # cdk-nag found nothing unacknowledged (S1's reason is given)
    props = synthesis.resources[bucket_lid(synthesis)]["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {"BlockPublicAcls": True, "BlockPublicPolicy": True,
                                                       "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
    assert "CorsConfiguration" not in props  # uploads come from servers holding the form secret, not browsers
    assert "BucketName" not in props  # names are global: CloudFormation makes one
    assert synthesis.resources[bucket_lid(synthesis)]["DeletionPolicy"] == "Retain"


def test_given_the_bucket_when_synthesised_then_its_policy_denies_plain_http(synthesis: Synthesis) -> None:
    (policy,) = synthesis.of_type("AWS::S3::BucketPolicy").values()
    assert bucket_lid(synthesis) in set(_refs_in(policy["Properties"]["Bucket"]))
    (deny,) = [st for st in policy["Properties"]["PolicyDocument"]["Statement"] if st["Effect"] == "Deny"]
    assert deny["Action"] == "s3:*"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_given_the_retention_setting_when_synthesised_then_uploads_expire_after_it(synthesis: Synthesis) -> None:
    (rule,) = synthesis.resources[bucket_lid(synthesis)]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled"
    assert rule["Prefix"] == UPLOADS_BUCKET.prefix
    assert rule["ExpirationInDays"] == int(DeploymentSettings().upload_retention_days)
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}


def test_given_another_retention_when_synthesised_then_the_rule_follows_and_out_of_range_is_refused(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    week = synthesize(tmp_path_factory.mktemp("week"), {"interlock:upload_retention_days": "7"})
    (lid,) = week.of_type("AWS::S3::Bucket")
    (rule,) = week.resources[lid]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == 7
    with pytest.raises(ValueError, match="upload_retention_days"):
        synthesize(tmp_path_factory.mktemp("long"), {"interlock:upload_retention_days": "365"})


def test_given_grants_when_synthesised_then_only_the_uploads_function_puts_and_only_validate_reads(
    synthesis: Synthesis,
) -> None:
    holders = {fn.name for fn in TOPOLOGY.functions if s3_statements(synthesis, fn.name)}
    assert holders == {"uploads_api", "job_validate"}
    assert TOPOLOGY.granted(Access.BUCKET_PUT) == ["uploads_api"]
    assert TOPOLOGY.granted(Access.BUCKET_READ) == ["job_validate"]
    bucket = bucket_lid(synthesis)
    expected = {
        "uploads_api": [({"s3:PutObject"}, "objects")],
        "job_validate": [({"s3:GetObject"}, "objects"), ({"s3:ListBucket"}, "bucket")],
    }
    for name, wanted in expected.items():
        seen = []
        for st in s3_statements(synthesis, name):
            (resource,) = _listify(st["Resource"])
            assert set(_refs_in(resource)) == {bucket}, st
            if isinstance(resource, dict) and "Fn::Join" in resource:
                # <bucket ARN>/uploads/*: only the uploads prefix, never the whole bucket's objects
                assert resource["Fn::Join"][1][-1] == f"/{UPLOADS_BUCKET.prefix}*", st
                seen.append((set(_listify(st["Action"])), "objects"))
            else:
                assert resource == {"Fn::GetAtt": [bucket, "Arn"]}, st
                seen.append((set(_listify(st["Action"])), "bucket"))
        assert sorted(seen, key=str) == sorted(wanted, key=str), name


def test_given_the_uploads_route_when_synthesised_then_it_is_open_to_signed_senders_and_throttled(
    synthesis: Synthesis,
) -> None:
    methods = [m for m in synthesis.of_type("AWS::ApiGateway::Method").values()
               if m["Properties"]["HttpMethod"] == "POST"
               and synthesis.resources[m["Properties"]["ResourceId"]["Ref"]]["Properties"].get("PathPart") == "uploads"]
    (method,) = methods
    assert method["Properties"]["AuthorizationType"] == "NONE"  # authenticated by the form secret's signature
    stage = next(iter(synthesis.of_type("AWS::ApiGateway::Stage").values()))["Properties"]
    (setting,) = [ms for ms in stage["MethodSettings"] if ms["ResourcePath"] == "/~1uploads"]
    rate = int(DeploymentSettings().api_rate_uploads)
    assert (setting["ThrottlingRateLimit"], setting["ThrottlingBurstLimit"]) == (rate, 2 * rate)


def test_given_the_functions_when_synthesised_then_they_are_told_the_bucket_and_the_settings(
    synthesis: Synthesis,
) -> None:
    from test_stack import functions_by_name

    for name in ("uploads_api", "job_validate"):
        env = functions_by_name(synthesis)[name][1]["Properties"]["Environment"]["Variables"]
        assert set(_refs_in(env["INTERLOCK_UPLOADS_BUCKET"])) == {bucket_lid(synthesis)}
        assert env["INTERLOCK_UPLOAD_PREFIX"] == UPLOADS_BUCKET.prefix
        assert env["INTERLOCK_UPLOAD_MAX_BYTES"] == DeploymentSettings().upload_max_bytes
    env = functions_by_name(synthesis)["uploads_api"][1]["Properties"]["Environment"]["Variables"]
    assert env["INTERLOCK_UPLOAD_URL_TTL_SECONDS"] == "300"
    assert env["INTERLOCK_UPLOAD_SOURCE"] == "form"
    assert env["INTERLOCK_UPLOAD_ENDPOINT_URL"] == ""  # S3's own endpoint on AWS
