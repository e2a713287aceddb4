"""S3: the topology's buckets (the uploads bucket: documents too large for a webhook body, interlock.uploads).

Each bucket is private (every public access blocked, objects owned by the bucket owner, no ACLs), TLS only (a
bucket policy denies plain HTTP), encrypted at rest with S3-managed keys, and keeps objects under its prefix for
the days its retention setting says: a lifecycle rule expires them (and aborts an incomplete multipart upload
after a day). No CORS: a presigned URL is asked for with the form source's signing secret, which a browser must
never hold, so uploads come from servers, which CORS does not concern.

The grants (:meth:`UploadBuckets.grant`): ``BUCKET_PUT`` is ``s3:PutObject`` under the prefix (what the uploads
function's presigned URLs may do); ``BUCKET_READ`` is ``s3:GetObject`` under the prefix and ``s3:ListBucket`` on
the bucket (without which S3 answers a missing object with 403, not 404).
"""

from __future__ import annotations

from collections.abc import Iterator

from aws_cdk import CfnElement, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct
from interlock.topology import Access, Bucket

from infra.context import int_setting
from infra.nag import acknowledge
from infra.naming import construct_id

PUT_ACTIONS = ("s3:PutObject",)
READ_ACTIONS = ("s3:GetObject",)
LIST_ACTIONS = ("s3:ListBucket",)
MAX_RETENTION_DAYS = 30  # interlock.uploads.UploadReadSettings' bound


class TopologyBucket(Construct):
    def __init__(self, scope: Construct, cid: str, *, spec: Bucket) -> None:
        super().__init__(scope, cid)
        self.spec = spec
        self.retention_days = int_setting(self, spec.retention_setting, minimum=1, maximum=MAX_RETENTION_DAYS) or 3
        # No physical name (bucket names are global); the bucket stays if the stack goes, as the table does: what
        # it holds expires by itself within days.
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            versioned=False,
            lifecycle_rules=[s3.LifecycleRule(
                id="expire-uploads",
                prefix=spec.prefix,
                expiration=Duration.days(self.retention_days),
                abort_incomplete_multipart_upload_after=Duration.days(1),
            )],
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(
            self.bucket,
            "AwsSolutions-S1",
            "No server access logs: objects are written only through short-lived presigned URLs that the uploads "
            "function signs for a verified sender, read only by the workers granted bucket_read, and deleted after "
            "days; every presign is logged by the function. A logs bucket would itself be an unlogged bucket. "
            "CloudTrail S3 data events can be turned on for the bucket where an audit of each GET/PUT is needed.",
        )

    @property
    def objects_arn(self) -> str:
        return self.bucket.arn_for_objects(f"{self.spec.prefix}*")

    def grant(self, role: iam.IRole, access: Access) -> None:
        """``BUCKET_PUT`` or ``BUCKET_READ`` on this bucket, for ``role``."""
        if access is Access.BUCKET_PUT:
            iam.Grant.add_to_principal(grantee=role, actions=list(PUT_ACTIONS), resource_arns=[self.objects_arn])
        elif access is Access.BUCKET_READ:
            iam.Grant.add_to_principal(grantee=role, actions=list(READ_ACTIONS), resource_arns=[self.objects_arn])
            iam.Grant.add_to_principal(grantee=role, actions=list(LIST_ACTIONS),
                                       resource_arns=[self.bucket.bucket_arn])
        else:
            raise ValueError(f"no bucket grant for {access!r}")
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::<{self.logical_id}.Arn>/{self.spec.prefix}*]",
            f"Objects under the {self.spec.name} bucket's {self.spec.prefix} prefix, whose keys the uploads function "
            "makes (random, one per upload): a wildcard over that prefix is the narrowest statement S3 allows.",
        )

    @property
    def logical_id(self) -> str:
        """The bucket's logical id in the template (what cdk-nag names its findings by)."""
        cfn = self.bucket.node.default_child
        assert isinstance(cfn, CfnElement)
        return str(Stack.of(self).resolve(Stack.of(self).get_logical_id(cfn)))


class UploadBuckets(Construct):
    def __init__(self, scope: Construct, cid: str, *, specs: tuple[Bucket, ...]) -> None:
        super().__init__(scope, cid)
        # The uploads' settings, refused at synthesis rather than at the functions' cold start
        # (interlock.uploads.UploadApiSettings' bounds).
        int_setting(self, "upload_url_ttl_seconds", minimum=1, maximum=3600)
        int_setting(self, "upload_max_bytes", minimum=1, maximum=100 * 1024 * 1024)
        self.by_name = {spec.name: TopologyBucket(self, construct_id(spec.name), spec=spec) for spec in specs}

    def __getitem__(self, name: str) -> TopologyBucket:
        try:
            return self.by_name[name]
        except KeyError:
            raise KeyError(f"no bucket named {name!r} in the topology") from None

    def __iter__(self) -> Iterator[TopologyBucket]:
        return iter(self.by_name.values())
