"""The one declarative description of an Interlock deployment.

Both realisations are built from this module and from nothing else:

* ``infra/`` turns it into a CDK stack (API Gateway, Lambda, SQS + DLQ, DynamoDB, Step Functions, SES,
  EventBridge rules).
* ``interlock.local`` turns it into the embedded local cloud (moto + an HTTP server + an SQS poller + an
  emulation of the EventBridge rules on execution status changes).

A route, queue, function, secret, state machine or execution watch that is not declared here exists in
neither.
Values that only exist once deployed (a queue URL, a state machine ARN, the API URL) are written as
:class:`Ref` and resolved by each realisation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

from interlock.kit import Job, Workflow
from interlock.kit.connectors import CONNECTORS

REPO_ROOT = Path(__file__).resolve().parents[3]
FUNCTIONS_DIR = REPO_ROOT / "functions"

APP_NAME = "interlock"
METRICS_NAMESPACE = "Interlock"


class RefKind(StrEnum):
    TABLE_NAME = "table_name"
    QUEUE_URL = "queue_url"
    STATE_MACHINE_ARN = "state_machine_arn"
    # {"<workflow>": "<ARN of its automatic (Express) state machine>", ...} as JSON: what the router starts.
    STATE_MACHINE_ARNS = "state_machine_arns"
    FUNCTION_ARN = "function_arn"
    # The URL the API is reached at: the ``public_base_url`` setting (a custom domain, a tunnel) when given,
    # else the API's own (:func:`public_base_url`)
    API_URL = "api_url"
    SECRET_PREFIX = "secret_prefix"
    SETTING = "setting"
    # The webhook sources the ingest accepts, ``name=scheme,...``: the topology's sources, narrowed by the
    # ``enabled_sources`` setting when it is given (:meth:`Topology.enabled_sources`).
    WEBHOOK_SOURCES = "webhook_sources"
    # The Secrets Manager secret holding the AI provider's API key: its name on AWS; locally empty (a laptop's
    # key comes from OPENAI_API_KEY in the environment).
    AI_KEY_SECRET = "ai_key_secret"
    # The physical name of a bucket of the topology (name: the bucket's topology name).
    BUCKET_NAME = "bucket_name"
    # The physical name of a workflow's own table (name: the table's declared name, WorkflowTable).
    WORKFLOW_TABLE_NAME = "workflow_table_name"
    # The URL of a queue's DLQ (name: the queue's topology name).
    DLQ_URL = "dlq_url"


@dataclass(frozen=True)
class Ref:
    """A value known only once a realisation has created the resource it names."""

    kind: RefKind
    name: str = ""


class Access(StrEnum):
    TABLE_READ = "table_read"
    TABLE_WRITE = "table_write"
    TABLE_DELETE = "table_delete"  # deleting items: only what undoes an acceptance (the ingest, a replay)
    QUEUE_SEND = "queue_send"
    STATES_START = "states_start"
    STATES_CALLBACK = "states_callback"
    SES_SEND = "ses_send"
    SECRETS_READ = "secrets_read"
    # GetSecretValue on the secret a connector's setting names (target: the setting), when it names one
    CONNECTOR_SECRET_READ = "connector_secret_read"
    AI_KEY_READ = "ai_key_read"
    # s3:PutObject under the bucket's prefix (target: the bucket): what a presigned upload URL it signs can do
    BUCKET_PUT = "bucket_put"
    # s3:GetObject under the bucket's prefix, and s3:ListBucket so that a missing object is a 404, not a 403
    BUCKET_READ = "bucket_read"
    # Read and write items of a workflow's own table (target: its declared name), what its jobs' workers get
    WORKFLOW_TABLE_READ_WRITE = "workflow_table_read_write"
    # Delete items of a workflow's own table that declares it deletes (kit.DataTable.deletes): its workers
    WORKFLOW_TABLE_DELETE = "workflow_table_delete"
    # Read items of a workflow's own table (a hand-off page's conversation table): the hand-off pages
    WORKFLOW_TABLE_READ = "workflow_table_read"
    # Query the timeline table's index of runs (target: the index's name): the operator's lists of runs
    RUNS_INDEX_READ = "runs_index_read"
    # Read, hide again and delete the messages of a queue's DLQ (target: the queue's name): the operator's redrive
    DLQ_REDRIVE = "dlq_redrive"


@dataclass(frozen=True)
class Grant:
    access: Access
    target: str = ""  # queue name, state machine name, ... ("" = the one table / all webhook secrets)


@dataclass(frozen=True)
class Function:
    name: str
    module: str  # module in functions/, its callable is ``handler``
    description: str
    grants: tuple[Grant, ...] = ()
    env: dict[str, str | Ref] = field(default_factory=dict)
    timeout_seconds: int = 10
    memory_mb: int = 256
    # Concurrent executions reserved for (and capped at) this function; None: from the account's shared pool.
    # At least the maximum_concurrency of any queue it consumes (docs/deploy.md, Concurrency).
    reserved_concurrency: int | None = None

    @property
    def handler(self) -> str:
        return f"{self.module}.handler"


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # API Gateway resource path, e.g. /webhooks/{source}
    function: str
    # "none": callers without AWS credentials, authenticated by the handler (HMAC, approval token);
    # "iam": SigV4-signed callers (operators, dashboards). The local runtime is a single-user laptop
    # realisation and does not check SigV4.
    auth: str = "none"


@dataclass(frozen=True)
class Queue:
    name: str
    consumer: str  # function name fed by the event source mapping
    batch_size: int = 10
    max_batching_window_seconds: int = 0
    visibility_timeout_seconds: int = 60
    max_receive_count: int = 5  # receives before a message is moved to the DLQ
    retention_days: int = 4
    dlq_retention_days: int = 14
    # The most concurrent invocations of the consumer the event source starts (SQS ESM ScalingConfig, 2..1000);
    # None: no cap. Below the consumer's reserved concurrency, a burst waits in the queue instead of being
    # throttled, which would count receives towards max_receive_count and push messages to the DLQ.
    maximum_concurrency: int | None = None

    @property
    def dlq_name(self) -> str:
        return f"{self.name}-dlq"


class StateMachineType(StrEnum):
    EXPRESS = "EXPRESS"  # a run's automatic path: billed by duration, at-least-once, at most five minutes
    STANDARD = "STANDARD"  # a wait (for a person, an external event): billed by transition, exactly-once


@dataclass(frozen=True)
class StateMachine:
    name: str
    definition_path: Path  # the ASL file (in its workflow's package)
    # ${Placeholder} in the ASL -> the ARN of a function of this topology
    function_substitutions: dict[str, str]
    type: StateMachineType = StateMachineType.STANDARD
    # ${Placeholder} in the ASL -> the ARN of another state machine of this topology (by name, not reference:
    # a workflow's two machines start each other)
    state_machine_substitutions: dict[str, str] = field(default_factory=dict)
    workflow: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "definition_path", Path(self.definition_path))

    @property
    def definition_file(self) -> str:
        return self.definition_path.name

    def functions(self) -> list[str]:
        return list(self.function_substitutions.values())


EXECUTION_STOPPED_UNSUCCESSFULLY = ("FAILED", "TIMED_OUT", "ABORTED")


@dataclass(frozen=True)
class ExecutionWatch:
    """Step Functions' "Execution Status Change" events of some state machines, delivered to a function.

    On AWS an EventBridge rule (source ``aws.states``) matching ``statuses`` of ``state_machines``, whose
    target is ``function``; locally a poller that builds the same events from the executions' status.
    An event that cannot be delivered, or whose invocations all fail, lands in the watch's DLQ.
    """

    name: str
    function: str  # fed the EventBridge event, invoked asynchronously
    state_machines: tuple[str, ...]  # Standard machines: their EventBridge status-change events
    # Express machines send no events: their log groups (level ERROR) feed a CloudWatch Logs subscription filter on
    # the execution-ended records, delivered to the same function.
    express_state_machines: tuple[str, ...] = ()
    statuses: tuple[str, ...] = EXECUTION_STOPPED_UNSUCCESSFULLY
    retry_attempts: int = 8  # EventBridge's retries when it cannot deliver to the function
    max_event_age_seconds: int = 24 * 3600  # how long EventBridge keeps trying, then the event goes to the DLQ
    async_retry_attempts: int = 2  # Lambda's retries of a failed (asynchronous) invocation, then the DLQ
    dlq_retention_days: int = 14

    @property
    def dlq_name(self) -> str:
        return f"{self.name}-dlq"


@dataclass(frozen=True)
class Index:
    """A global secondary index of the timeline table: string keys, ``projection`` its non-key attributes."""

    name: str
    partition_key: str
    sort_key: str
    projection: tuple[str, ...]


def _run_indexes() -> tuple[Index, ...]:
    from interlock import run_list

    # One index: CloudFormation adds one index to a table per stack update (docs/operators.md, The index).
    return (Index(run_list.INDEX_NAME, run_list.INDEX_PARTITION_KEY, run_list.INDEX_SORT_KEY,
                  run_list.INDEX_PROJECTION),)


@dataclass(frozen=True)
class Table:
    name: str = "timeline"
    partition_key: str = "pk"
    sort_key: str = "sk"
    ttl_attribute: str = "expires_at"
    indexes: tuple[Index, ...] = field(default_factory=_run_indexes)


@dataclass(frozen=True)
class Bucket:
    """An S3 bucket: private, encrypted, TLS only; its objects under ``prefix``, deleted ``retention_setting``
    days after they were written (a lifecycle rule). Locally, a bucket of the same name in moto."""

    name: str
    prefix: str
    retention_setting: str  # the deployment setting holding the days an object is kept


@dataclass(frozen=True)
class WorkflowTable:
    """A table a workflow declares (``kit.DataTable``): its records, read and written by its jobs' workers; with
    its stream on (new and old images) when a status change watches it."""

    name: str
    workflow: str
    partition_key: str
    sort_key: str | None = None
    stream: bool = False
    indexes: tuple[tuple[str, str, str | None], ...] = ()  # (name, partition key, sort key or None)
    deletes: bool = False  # its workers may delete items (kit.DataTable.deletes)

    @property
    def env_var(self) -> str:
        from interlock.kit.triggers import table_variable

        return table_variable(self.name)


@dataclass(frozen=True)
class ScheduleTarget:
    """A workflow's schedule (``kit.Schedule``): on AWS an EventBridge Scheduler schedule whose target is ``queue``
    with the fixed input ``message`` (Scheduler fills in its scheduled time), flexible time window off, retried
    for ``max_event_age_seconds`` and then sent to the queue's DLQ; locally ``interlock.local.scheduler``."""

    workflow: str
    name: str
    expression: str
    timezone: str
    queue: str
    message: str
    retry_attempts: int = 185
    max_event_age_seconds: int = 24 * 3600

    @property
    def id(self) -> str:
        """``<workflow>.<schedule>``: what ``interlock trigger`` names, and the envelope's type."""
        return f"{self.workflow}.{self.name}"


@dataclass(frozen=True)
class StatusPipe:
    """A workflow's status change (``kit.StatusChange``): on AWS an EventBridge Pipe from ``table``'s stream, its
    filter ``pattern`` (JSON, ``kit.triggers.status_change_pattern``), to ``queue``; records it cannot deliver go to
    the queue's DLQ. Locally ``interlock.local.streams`` applies the same pattern to moto's stream."""

    workflow: str
    name: str
    table: str
    pattern: str
    queue: str
    batch_size: int = 10  # an SQS target's largest batch
    retry_attempts: int = 10
    max_record_age_seconds: int = 24 * 3600

    @property
    def id(self) -> str:
        return f"{self.workflow}.{self.name}"


@dataclass(frozen=True)
class WebhookSource:
    """``POST /webhooks/{name}`` (and ``GET``, for the provider's handshake), verified by ``scheme``: a key
    of ``interlock.webhooks.registry.SCHEMES``. Each source has its own secret, ``<secret_prefix><name>``."""

    name: str
    scheme: str


class InvalidPublicBaseUrl(ValueError):
    """The ``public_base_url`` setting is not an http(s) URL without a query, fragment or trailing slash."""


def public_base_url(setting: str, api_url: str) -> str:
    """What ``Ref(RefKind.API_URL)`` resolves to: the ``public_base_url`` setting, when given, else the API's own
    URL. Approval links are built on it, and HubSpot signs the URL it calls with it."""
    value = setting.strip()
    if not value:
        return api_url
    if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value) or value.endswith("/"):
        raise InvalidPublicBaseUrl(f"public_base_url must be the http(s) URL the API is reached at, with no query "
                                   f"or trailing slash (e.g. https://hooks.example.com), not {value!r}")
    return value


class UnknownWebhookSource(ValueError):
    """The ``enabled_sources`` setting names a source the topology does not declare."""


class InvalidWebhookSource(ValueError):
    """The ``extra_webhook_sources`` setting declares a source that cannot exist (bad name, unknown scheme,
    a name already taken)."""


# A source's name is a path segment of /webhooks/{source} and part of its secret's name.
_SOURCE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,47}$")


@dataclass(frozen=True)
class Topology:
    table: Table
    queues: tuple[Queue, ...]
    functions: tuple[Function, ...]
    routes: tuple[Route, ...]
    state_machines: tuple[StateMachine, ...]
    webhook_sources: tuple[WebhookSource, ...]
    secret_prefix: str = "interlock/webhooks/"
    execution_watches: tuple[ExecutionWatch, ...] = ()
    buckets: tuple[Bucket, ...] = ()
    # The workflows' own tables, schedules and status changes (docs/finance.md, Triggers that are not webhooks).
    workflow_tables: tuple[WorkflowTable, ...] = ()
    schedules: tuple[ScheduleTarget, ...] = ()
    status_pipes: tuple[StatusPipe, ...] = ()

    def check_budgets(self) -> dict[str, float]:
        """Each Express machine's worst case in seconds (:mod:`interlock.kit.budget`); raises ``OverBudget`` for
        one that could outlast Express's cap. Both realisations call it before they build anything."""
        from interlock.kit.budget import check

        return {
            sm.name: check(sm.name, sm.definition_path.read_text(encoding="utf-8"),
                           {f"${{{p}}}": self.function(f).timeout_seconds
                            for p, f in sm.function_substitutions.items()})
            for sm in self.state_machines if sm.type is StateMachineType.EXPRESS
        }

    def function(self, name: str) -> Function:
        for fn in self.functions:
            if fn.name == name:
                return fn
        raise KeyError(f"no function named {name!r} in the topology")

    def granted(self, access: Access) -> list[str]:
        """The names of the functions granted ``access``, sorted (``AI_KEY_READ``: those that call a model)."""
        return sorted(fn.name for fn in self.functions if any(g.access is access for g in fn.grants))

    def queue(self, name: str) -> Queue:
        for q in self.queues:
            if q.name == name:
                return q
        raise KeyError(f"no queue named {name!r} in the topology")

    def state_machine(self, name: str) -> StateMachine:
        for sm in self.state_machines:
            if sm.name == name:
                return sm
        raise KeyError(f"no state machine named {name!r} in the topology")

    def bucket(self, name: str) -> Bucket:
        for bucket in self.buckets:
            if bucket.name == name:
                return bucket
        raise KeyError(f"no bucket named {name!r} in the topology")

    def workflow_table(self, name: str) -> WorkflowTable:
        for table in self.workflow_tables:
            if table.name == name:
                return table
        raise KeyError(f"no workflow table named {name!r} in the topology")

    def schedule(self, schedule_id: str) -> ScheduleTarget:
        """The schedule ``<workflow>.<schedule>``."""
        for target in self.schedules:
            if target.id == schedule_id:
                return target
        raise KeyError(f"no schedule named {schedule_id!r} in the topology")

    def execution_watch(self, name: str) -> ExecutionWatch:
        for watch in self.execution_watches:
            if watch.name == name:
                return watch
        raise KeyError(f"no execution watch named {name!r} in the topology")

    def secret_name(self, source: str) -> str:
        return f"{self.secret_prefix}{source}"

    def webhook_source(self, name: str) -> WebhookSource:
        for source in self.webhook_sources:
            if source.name == name:
                return source
        raise KeyError(f"no webhook source named {name!r} in the topology")

    def with_extra_webhook_sources(self, setting: str) -> Topology:
        """This topology with the further webhook sources the ``extra_webhook_sources`` setting declares:
        ``name=scheme`` pairs, comma-separated (``typeform=standard-webhooks, billing=stripe``).

        Each realisation applies the setting before it builds anything, so a further source is a source like
        the others in both: its own route segment, its own secret, readable by the ingest alone.
        """
        from interlock.kit.registry import PLATFORM_SOURCES
        from interlock.webhooks.registry import SCHEMES

        sources = list(self.webhook_sources)
        for part in (p.strip() for p in setting.split(",")):
            if not part:
                continue
            name, sep, scheme = (p.strip() for p in part.partition("="))
            if not sep or not scheme:
                raise InvalidWebhookSource(f"extra_webhook_sources: {part!r} must be name=scheme, e.g. "
                                           "typeform=standard-webhooks")
            if not _SOURCE_NAME.fullmatch(name):
                raise InvalidWebhookSource(f"extra_webhook_sources: {name!r} is not a source name (lower-case "
                                           "letters, digits, '-' and '_', starting with a letter, at most 48)")
            if name in PLATFORM_SOURCES:
                raise InvalidWebhookSource(f"extra_webhook_sources: {name!r} is the source of the envelopes "
                                           "Interlock makes itself (schedules, status changes, follow-ups); "
                                           "pick another name")
            if scheme not in SCHEMES:
                raise InvalidWebhookSource(f"extra_webhook_sources: {part!r} names no scheme {scheme!r}; the "
                                           f"schemes are: {', '.join(sorted(SCHEMES))}")
            if any(s.name == name for s in sources):
                raise InvalidWebhookSource(f"extra_webhook_sources: a webhook source named {name!r} exists "
                                           "already")
            sources.append(WebhookSource(name, scheme))
        return replace(self, webhook_sources=tuple(sources))

    def enabled_sources(self, setting: str = "") -> str:
        """What ``Ref(RefKind.WEBHOOK_SOURCES)`` resolves to: ``name=scheme`` for every webhook source, or
        for the ones the ``enabled_sources`` setting names (comma-separated names; an empty setting means
        all of them).

        The setting can only narrow the topology: a source that is not declared here has no secret in
        either realisation (nor the right to read one), so naming one is an error, not a silent 404.
        """
        declared = {s.name: s for s in self.webhook_sources}
        wanted = [part.strip() for part in setting.split(",") if part.strip()]
        if not wanted:
            chosen = list(self.webhook_sources)
        else:
            chosen = []
            for part in wanted:
                name, _, scheme = (p.strip() for p in part.partition("="))
                source = declared.get(name)
                if source is None or (scheme and scheme != source.scheme):
                    known = ", ".join(f"{s.name} ({s.scheme})" for s in self.webhook_sources)
                    raise UnknownWebhookSource(
                        f"enabled_sources names {part!r}, which is not a webhook source of the topology "
                        f"(add a WebhookSource to interlock/topology.py first); the sources are: {known}")
                if source not in chosen:
                    chosen.append(source)
        return ",".join(f"{s.name}={s.scheme}" for s in chosen)


# ---------------------------------------------------------------------------------------------------------
# The deployment
# ---------------------------------------------------------------------------------------------------------

INGEST_QUEUE = "ingest"
EXECUTION_FAILURES = "execution_failures"
WAIT_SUFFIX = "-wait"  # a workflow's Standard machine is named <workflow>-wait

# Documents too large for a webhook body (interlock.uploads): POST /uploads presigns a PUT into this bucket.
UPLOADS_BUCKET = Bucket(name="uploads", prefix="uploads/", retention_setting="upload_retention_days")
# The source whose signing secret authorises an upload: the sender of the events that refer to one.
UPLOAD_SOURCE = "form"

# Every webhook source: POST /webhooks/<name>, its secret <secret_prefix><name>, verified by its scheme.
WEBHOOK_SOURCES = (
    WebhookSource("form", "standard-webhooks"),  # forms, internal tools, any Standard Webhooks / Svix sender
    WebhookSource("stripe", "stripe"),
    WebhookSource("slack", "slack"),
    WebhookSource("whatsapp", "whatsapp"),
    WebhookSource("hubspot", "hubspot"),
    WebhookSource("github", "github"),
)

# The AI provider's API key (interlock.ai.choice); the stack creates it empty: no key, the offline provider.
AI_KEY_SECRET_NAME = f"{APP_NAME}/ai/api-key"
# Variables a realisation leaves unset when their value is empty: the openai SDK reads OPENAI_BASE_URL itself
# and takes an empty one for a URL, where unset means OpenAI's own.
UNSET_WHEN_EMPTY = frozenset({"OPENAI_BASE_URL"})

_TABLE = Ref(RefKind.TABLE_NAME)
_COMMON_ENV: dict[str, str | Ref] = {
    "INTERLOCK_TABLE_NAME": _TABLE,
    # Workflow packages beyond interlock.workflows.* (interlock.kit.registry): the router and workers load them.
    "INTERLOCK_EXTRA_WORKFLOWS": Ref(RefKind.SETTING, "extra_workflows"),
    "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
    # The Powertools Tracer (X-Ray SDK) costs ~0.4 s of cold start; Lambda active tracing is on regardless.
    "POWERTOOLS_TRACE_DISABLED": Ref(RefKind.SETTING, "powertools_trace_disabled"),
}
_READ = Grant(Access.TABLE_READ)
_WRITE = Grant(Access.TABLE_WRITE)


def _env(**extra: str | Ref) -> dict[str, str | Ref]:
    return {**_COMMON_ENV, **extra}


def _upload_read_env() -> dict[str, str | Ref]:
    """What reading an upload needs (interlock.uploads.UploadReadSettings)."""
    return {
        "INTERLOCK_UPLOADS_BUCKET": Ref(RefKind.BUCKET_NAME, UPLOADS_BUCKET.name),
        "INTERLOCK_UPLOAD_PREFIX": UPLOADS_BUCKET.prefix,
        "INTERLOCK_UPLOAD_MAX_BYTES": Ref(RefKind.SETTING, "upload_max_bytes"),
        "INTERLOCK_UPLOAD_RETENTION_DAYS": Ref(RefKind.SETTING, UPLOADS_BUCKET.retention_setting),
    }


def _ai_env() -> dict[str, str | Ref]:
    """The AI decision layer's settings (interlock.settings.AiSettings), for the functions that call a model."""
    names = ("ai_provider", "ai_model_tiers", "ai_retries_per_tier", "ai_call_timeout_seconds",
             "ai_run_max_tokens", "ai_run_max_cost_usd", "ai_prices")
    return {
        **{f"INTERLOCK_{n.upper()}": Ref(RefKind.SETTING, n) for n in names},
        "INTERLOCK_AI_API_KEY_SECRET": Ref(RefKind.AI_KEY_SECRET),
        "OPENAI_BASE_URL": Ref(RefKind.SETTING, "openai_base_url"),
    }


# A function that calls a model: time for its tiers (each call's timeout is cut to what is left: 20 s for the first
# by default, what remains for the next) within Express's five minutes for the whole automatic path, and the
# memory (so the CPU) to import the openai SDK quickly on a cold start.
_AI_TIMEOUT_SECONDS = 30
_AI_MEMORY_MB = 1024


# A worker's Lambda timeout by job: a decision's tiers share the time left (each call is cut to it); a
# connector call has its own timeouts inside. The automatic path's worst case must fit Express's five minutes
# (interlock.kit.budget, checked by both realisations).
_WORKER_TIMEOUT_SECONDS = {Job.DECIDE: _AI_TIMEOUT_SECONDS, Job.QUERY: 8, Job.ACT: 10, Job.NOTIFY: 8,
                           Job.APPROVE: 10, Job.VALIDATE: 5, Job.RECORD: 5, Job.WAIT: 5}
_WORKER_DESCRIPTION = {
    Job.VALIDATE: "Worker: validate, extract and check by deterministic rules, for every workflow",
    Job.DECIDE: "Worker: AI decision points (the only reader of the model key), for every workflow",
    Job.QUERY: "Worker: connector reads (CRM lookups, enrichment), for every workflow",
    Job.ACT: "Worker: writes to systems of record, each once, for every workflow",
    Job.NOTIFY: "Worker: messages (Slack, email), each once, for every workflow",
    Job.APPROVE: "Worker: ask a person (a hashed one-time link by email), the waits' task",
    Job.RECORD: "Worker: record a run's outcome (failed, rejected, escalated) or a partial step",
    Job.WAIT: "Worker: register a wait for an external event by its correlation key, the waits' task",
}


def _worker(job: Job, workflows: tuple[Workflow, ...]) -> Function:
    """The worker of ``job``: the table, plus what its kind of job needs and nothing else."""
    grants: list[Grant] = [_READ, _WRITE]
    env: dict[str, str | Ref] = _env()
    for grant, variable, value in _workflow_tables_of(job, workflows):
        grants.append(grant)
        env[variable] = value  # (a table granted twice, read-write and delete, is one variable)
    for name in sorted({n for wf in workflows for n in wf.settings}):
        env[f"INTERLOCK_{name.upper()}"] = Ref(RefKind.SETTING, name)
    for connector in CONNECTORS.values():
        if job in connector.jobs:
            env.update({f"INTERLOCK_{n.upper()}": Ref(RefKind.SETTING, n) for n in connector.settings})
            grants += [Grant(Access.CONNECTOR_SECRET_READ, n) for n in connector.settings if n.endswith("_secret")]
    memory = 256
    if job is Job.DECIDE:
        grants.append(Grant(Access.AI_KEY_READ))
        env.update(_ai_env())
        memory = _AI_MEMORY_MB
    if job is Job.VALIDATE:  # taking the document: a PDF's text, from an upload by its reference
        grants.append(Grant(Access.BUCKET_READ, UPLOADS_BUCKET.name))
        env.update(_upload_read_env())
    if job in (Job.NOTIFY, Job.APPROVE):
        grants.append(Grant(Access.SES_SEND))
    if job is Job.NOTIFY and any(wf.handoff_page for wf in workflows):
        env["INTERLOCK_PUBLIC_BASE_URL"] = Ref(RefKind.API_URL)  # hand-off links (ctx.handoff_link)
    if any(step.starts for wf in workflows for step in wf.steps if step.job is job):
        # A step of this job starts follow-up runs: onto the ingest queue, as a schedule's firing goes.
        grants.append(Grant(Access.QUEUE_SEND, INGEST_QUEUE))
        env["INTERLOCK_INGEST_QUEUE_URL"] = Ref(RefKind.QUEUE_URL, INGEST_QUEUE)
    if job is Job.WAIT:  # a wait whose event came first is resumed by its own registration
        grants += [Grant(Access.STATES_CALLBACK, name) for name in _event_waits(workflows)]
    if job is Job.APPROVE:
        env.update(INTERLOCK_PUBLIC_BASE_URL=Ref(RefKind.API_URL),
                   INTERLOCK_APPROVER_EMAIL=Ref(RefKind.SETTING, "approver_email"),
                   INTERLOCK_SENDER_EMAIL=Ref(RefKind.SETTING, "sender_email"),
                   INTERLOCK_APPROVAL_TTL_SECONDS=Ref(RefKind.SETTING, "approval_ttl_seconds"),
                   INTERLOCK_APPROVAL_TIMEOUT_SECONDS=Ref(RefKind.SETTING, "approval_timeout_seconds"))
    timeout = _WORKER_TIMEOUT_SECONDS[job]
    if job in (Job.ACT, Job.NOTIFY, Job.APPROVE):
        # An effect started longer ago than any effect worker can run was abandoned by its attempt
        # (interlock.kit.ledger); one value for all of them (the local runtime shares one environment).
        env["INTERLOCK_EFFECT_STALE_SECONDS"] = str(max(_WORKER_TIMEOUT_SECONDS[j] for j in
                                                        (Job.ACT, Job.NOTIFY, Job.APPROVE)) + 5)
    return Function(name=f"job_{job.value}", module=f"job_{job.value}", description=_WORKER_DESCRIPTION[job],
                    grants=tuple(grants), env=env, timeout_seconds=timeout, memory_mb=memory)


HANDOFFS_FUNCTION = "handoffs_api"


def _handoff_pages(workflows: tuple[Workflow, ...]) -> tuple[Function, ...]:
    """The hand-off pages' function (interlock.handoffs), when a workflow has one: its links in the table, the
    pages' conversation tables read, the runs a page starts sent to the ingest queue."""
    from interlock.kit.triggers import table_variable

    tables = sorted({wf.handoff_page.table for wf in workflows if wf.handoff_page})
    if not tables:
        return ()
    return (Function(
        name=HANDOFFS_FUNCTION,
        module="http_handoffs",
        description="GET/HEAD/POST /handoffs/{token}: a handed-off conversation; a reply or the hand-back, once",
        grants=(_READ, _WRITE, Grant(Access.QUEUE_SEND, INGEST_QUEUE),
                *(Grant(Access.WORKFLOW_TABLE_READ, t) for t in tables)),
        env=_env(INTERLOCK_INGEST_QUEUE_URL=Ref(RefKind.QUEUE_URL, INGEST_QUEUE),
                 **{table_variable(t): Ref(RefKind.WORKFLOW_TABLE_NAME, t) for t in tables}),
    ),)


def _event_waits(workflows: tuple[Workflow, ...]) -> list[str]:
    """The Standard machines that wait for an external event (their workflows declare resumers)."""
    return [f"{wf.name}{WAIT_SUFFIX}" for wf in workflows if wf.resumers and wf.wait]


def _workflow_tables_of(job: Job, workflows: tuple[Workflow, ...]) -> list[tuple[Grant, str, Ref]]:
    """What the worker of ``job`` gets of the workflows' own tables: each table of a workflow that has steps of
    that job, read and write, and its physical name in ``INTERLOCK_TABLE_<NAME>``."""
    from interlock.kit.triggers import table_variable

    return [(grant, table_variable(t.name), Ref(RefKind.WORKFLOW_TABLE_NAME, t.name))
            for wf in workflows if job in wf.jobs for t in wf.tables
            for grant in (Grant(Access.WORKFLOW_TABLE_READ_WRITE, t.name),
                          *((Grant(Access.WORKFLOW_TABLE_DELETE, t.name),) if t.deletes else ()))]


def _triggers(workflows: tuple[Workflow, ...]) -> tuple[tuple[WorkflowTable, ...], tuple[ScheduleTarget, ...],
                                                        tuple[StatusPipe, ...]]:
    """The workflows' tables, schedules and status-change pipes, all into the ingest queue."""
    import json

    from interlock.kit.triggers import schedule_message_template, status_change_pattern

    tables = tuple(WorkflowTable(t.name, wf.name, t.partition_key, t.sort_key,
                                 stream=any(c.table == t.name for c in wf.status_changes),
                                 indexes=tuple((i.name, i.partition_key, i.sort_key) for i in t.indexes),
                                 deletes=t.deletes)
                   for wf in workflows for t in wf.tables)
    schedules = tuple(ScheduleTarget(wf.name, s.name, s.expression, s.timezone, INGEST_QUEUE,
                                     schedule_message_template(wf.name, s.name))
                      for wf in workflows for s in wf.schedules)
    pipes = tuple(StatusPipe(wf.name, c.name, c.table, json.dumps(status_change_pattern(c), sort_keys=True),
                             INGEST_QUEUE)
                  for wf in workflows for c in wf.status_changes)
    return tables, schedules, pipes


_WORKER_PLACEHOLDER = re.compile(r"\$\{Worker_([a-z]+)\}")
_MACHINE_PLACEHOLDER = re.compile(r"\$\{StateMachine_(automatic|wait)\}")


def _machine(workflow: Workflow, kind: str) -> StateMachine:
    """One of a workflow's two state machines, its placeholders mapped to workers and to its other machine."""
    path = workflow.definition_path(kind)
    text = path.read_text(encoding="utf-8")
    names = {"automatic": workflow.name, "wait": f"{workflow.name}{WAIT_SUFFIX}"}
    return StateMachine(
        name=names[kind],
        definition_path=path,
        type=StateMachineType.EXPRESS if kind == "automatic" else StateMachineType.STANDARD,
        function_substitutions={f"Worker_{job}": f"job_{job}"
                                for job in sorted(set(_WORKER_PLACEHOLDER.findall(text)))},
        state_machine_substitutions={f"StateMachine_{other}": names[other]
                                     for other in sorted(set(_MACHINE_PLACEHOLDER.findall(text)))},
        workflow=workflow.name,
    )


def build(extra_workflows: str | None = None) -> Topology:
    """The deployment, with every workflow of the registry (and the packages ``extra_workflows`` names;
    default: the ``INTERLOCK_EXTRA_WORKFLOWS`` environment variable)."""
    from interlock.kit import registry

    workflows = tuple(registry.workflows(extra_workflows).values())
    workflow_tables, schedules, status_pipes = _triggers(workflows)
    automatic = [wf.name for wf in workflows]
    waiting = [f"{wf.name}{WAIT_SUFFIX}" for wf in workflows if wf.wait]
    functions = (
        Function(
            name="webhook_ingest",
            module="http_webhook",
            description="POST /webhooks/{source}: verify, normalise, dedupe, record 'received', queue",
            grants=(_READ, _WRITE, Grant(Access.TABLE_DELETE), Grant(Access.QUEUE_SEND, INGEST_QUEUE),
                    Grant(Access.SECRETS_READ)),
            env=_env(
                INTERLOCK_INGEST_QUEUE_URL=Ref(RefKind.QUEUE_URL, INGEST_QUEUE),
                INTERLOCK_SECRET_PREFIX=Ref(RefKind.SECRET_PREFIX),
                INTERLOCK_ENABLED_SOURCES=Ref(RefKind.WEBHOOK_SOURCES),
                # HubSpot signs the URL it posted to; API Gateway does not pass that on, so the ingest
                # rebuilds it from the API's public URL and the request path.
                INTERLOCK_PUBLIC_BASE_URL=Ref(RefKind.API_URL),
                INTERLOCK_LEGACY_SIGNATURE_SOURCES=Ref(RefKind.SETTING, "legacy_signature_sources"),
            ),
            # A flood of (unsigned) webhooks cannot take the whole account's concurrency from the other functions.
            reserved_concurrency=50,
        ),
        Function(
            name="runs_api",
            module="http_runs",
            description="GET /runs/{run_id}: the run's status and ordered timeline; /event: its kept event; "
                        "/events: the timeline as Server-Sent Events; GET /runs, GET /approvals: lists of runs",
            grants=(_READ, Grant(Access.RUNS_INDEX_READ, _run_indexes()[0].name)),
            env=_env(),
            # /events long-polls for up to 20 s (INTERLOCK_EVENTS_WINDOW_SECONDS) within API Gateway's 29 s.
            timeout_seconds=28,
        ),
        Function(
            name="runs_replay",
            module="http_replay",
            description="POST /runs/{run_id}/replay: a failed or ignored run's kept event, queued again as a new run",
            grants=(_READ, _WRITE, Grant(Access.TABLE_DELETE), Grant(Access.QUEUE_SEND, INGEST_QUEUE)),
            env=_env(INTERLOCK_INGEST_QUEUE_URL=Ref(RefKind.QUEUE_URL, INGEST_QUEUE)),
        ),
        Function(
            name="approvals_resend",
            module="http_approval_resend",
            description="POST /runs/{run_id}/approvals/resend: a lost approval email sent again, as a new link",
            grants=(_READ, _WRITE, Grant(Access.SES_SEND)),
            env=_env(INTERLOCK_PUBLIC_BASE_URL=Ref(RefKind.API_URL),
                     INTERLOCK_APPROVER_EMAIL=Ref(RefKind.SETTING, "approver_email"),
                     INTERLOCK_SENDER_EMAIL=Ref(RefKind.SETTING, "sender_email"),
                     INTERLOCK_APPROVAL_TTL_SECONDS=Ref(RefKind.SETTING, "approval_ttl_seconds"),
                     INTERLOCK_APPROVAL_TIMEOUT_SECONDS=Ref(RefKind.SETTING, "approval_timeout_seconds")),
        ),
        Function(
            name="dlq_api",
            module="http_dead_letters",
            description="GET /dlqs, POST /dlqs/{name}/redrive: the ingest DLQ's messages planned, and moved back",
            grants=(_READ, _WRITE, Grant(Access.DLQ_REDRIVE, INGEST_QUEUE), Grant(Access.QUEUE_SEND, INGEST_QUEUE)),
            env=_env(INTERLOCK_INGEST_QUEUE_URL=Ref(RefKind.QUEUE_URL, INGEST_QUEUE),
                     INTERLOCK_INGEST_DLQ_URL=Ref(RefKind.DLQ_URL, INGEST_QUEUE)),
            # A redrive reads and plans up to 100 messages: within API Gateway's 29 seconds.
            timeout_seconds=29,
        ),
        Function(
            name="approvals_api",
            module="http_approvals",
            description="GET/HEAD/POST /approvals/{token}: show an approval, decide it once",
            grants=(_READ, _WRITE, *(Grant(Access.STATES_CALLBACK, name) for name in waiting)),
            env=_env(),
            # An approver's click is answered whatever else is busy.
            reserved_concurrency=5,
        ),
        *_handoff_pages(workflows),
        Function(
            name="ingest_router",
            module="queue_router",
            description="Ingest queue consumer: route each envelope to its workflow, one execution per run",
            # STATES_CALLBACK: an event that ends a wait for it resumes that wait (interlock.kit.correlation)
            grants=(_READ, _WRITE, *(Grant(Access.STATES_START, name) for name in automatic),
                    *(Grant(Access.STATES_CALLBACK, name) for name in _event_waits(workflows))),
            env=_env(
                INTERLOCK_STATE_MACHINE_ARNS=Ref(RefKind.STATE_MACHINE_ARNS),
                INTERLOCK_APPROVAL_TIMEOUT_SECONDS=Ref(RefKind.SETTING, "approval_timeout_seconds"),
                # Which workflow table a stream record comes from (its ARN names the physical table).
                **{t.env_var: Ref(RefKind.WORKFLOW_TABLE_NAME, t.name) for t in workflow_tables if t.stream},
            ),
            timeout_seconds=30,
            reserved_concurrency=5,  # = the ingest queue's maximum_concurrency
        ),
        Function(
            name="run_watchdog",
            module="events_execution_status",
            description="Execution failed, timed out or aborted outside the workflow's Catch: record it on its run",
            grants=(_READ, _WRITE),
            env=_env(),
        ),
        Function(
            name="uploads_api",
            module="http_uploads",
            description="POST /uploads: a presigned PUT URL and a reference, for a document too large for a webhook",
            grants=(Grant(Access.SECRETS_READ, UPLOAD_SOURCE), Grant(Access.BUCKET_PUT, UPLOADS_BUCKET.name)),
            env={
                **{k: v for k, v in _COMMON_ENV.items() if k.startswith("POWERTOOLS_")},
                **_upload_read_env(),
                "INTERLOCK_UPLOAD_URL_TTL_SECONDS": Ref(RefKind.SETTING, "upload_url_ttl_seconds"),
                "INTERLOCK_UPLOAD_ENDPOINT_URL": Ref(RefKind.SETTING, "upload_endpoint_url"),
                "INTERLOCK_UPLOAD_SOURCE": UPLOAD_SOURCE,
                "INTERLOCK_SECRET_PREFIX": Ref(RefKind.SECRET_PREFIX),
                "INTERLOCK_ENABLED_SOURCES": Ref(RefKind.WEBHOOK_SOURCES),
            },
        ),
        *(_worker(job, workflows) for job in Job),
    )
    routes = (
        Route("POST", "/webhooks/{source}", "webhook_ingest"),
        Route("GET", "/webhooks/{source}", "webhook_ingest"),  # providers' setup handshakes (WhatsApp)
        Route("GET", "/runs", "runs_api", auth="iam"),
        Route("GET", "/approvals", "runs_api", auth="iam"),
        Route("GET", "/runs/{run_id}", "runs_api", auth="iam"),
        # The event's payload (personal data) and the replay are for operators alone: IAM (SigV4) on AWS.
        Route("GET", "/runs/{run_id}/event", "runs_api", auth="iam"),
        Route("GET", "/runs/{run_id}/events", "runs_api", auth="iam"),
        Route("POST", "/runs/{run_id}/replay", "runs_replay", auth="iam"),
        Route("POST", "/runs/{run_id}/approvals/resend", "approvals_resend", auth="iam"),
        Route("GET", "/dlqs", "dlq_api", auth="iam"),
        Route("POST", "/dlqs/{name}/redrive", "dlq_api", auth="iam"),
        Route("GET", "/approvals/{token}", "approvals_api"),
        Route("HEAD", "/approvals/{token}", "approvals_api"),
        Route("POST", "/approvals/{token}", "approvals_api"),
        *(Route(method, "/handoffs/{token}", HANDOFFS_FUNCTION) for method in ("GET", "HEAD", "POST")
          if any(wf.handoff_page for wf in workflows)),
        # Signed as a form webhook (the form source's secret), by the sender that posts the events: no AWS
        # credentials needed, and no open write into the bucket.
        Route("POST", "/uploads", "uploads_api"),
    )
    queues = (
        Queue(name=INGEST_QUEUE, consumer="ingest_router", batch_size=10, visibility_timeout_seconds=180,
              max_receive_count=5, maximum_concurrency=5),
    )
    state_machines = tuple(
        _machine(wf, kind) for wf in workflows for kind in ("automatic", "wait") if kind == "automatic" or wf.wait)
    # The safety net under every workflow's Catch blocks (interlock/watchdog.py): an execution that stops
    # unsuccessfully outside them (States.Runtime, the recorder failing, an operator's abort, a timeout)
    # still ends its run, recorded with a reason.
    execution_watches = (
        ExecutionWatch(
            name=EXECUTION_FAILURES, function="run_watchdog",
            state_machines=tuple(sm.name for sm in state_machines if sm.type is StateMachineType.STANDARD),
            express_state_machines=tuple(sm.name for sm in state_machines if sm.type is StateMachineType.EXPRESS)),
    )
    return Topology(
        table=Table(),
        queues=queues,
        functions=functions,
        routes=routes,
        state_machines=state_machines,
        webhook_sources=WEBHOOK_SOURCES,
        execution_watches=execution_watches,
        buckets=(UPLOADS_BUCKET,),
        workflow_tables=workflow_tables,
        schedules=schedules,
        status_pipes=status_pipes,
    )


TOPOLOGY = build()


@dataclass(frozen=True)
class DeploymentSettings:
    """Values behind ``Ref(RefKind.SETTING, name)``; CDK reads them from context, local from env."""

    # Workflow packages beyond interlock.workflows.*, import paths comma-separated (docs/workflows.md).
    extra_workflows: str = ""

    # Further webhook sources, name=scheme comma-separated (Topology.with_extra_webhook_sources).
    extra_webhook_sources: str = ""
    # Comma-separated names of the webhook sources to accept; empty: every source of the topology.
    enabled_sources: str = ""
    # The URL the API is reached at, when not its own (a custom domain): approval links, HubSpot's signed URL.
    public_base_url: str = ""
    # Comma-separated sources for which HubSpot's legacy v1/v2 signatures (no timestamp) are accepted.
    legacy_signature_sources: str = ""
    approval_min_confidence: str = "0.75"
    approval_timeout_seconds: str = str(72 * 3600)
    approval_ttl_seconds: str = str(72 * 3600)
    # Who approves (the approver pool): one address, or several comma-separated; each gets its own link per
    # request, and a wait asking N approvers needs N different ones of them (docs/finance.md, docs/deploy.md).
    approver_email: str = "approver@example.com"
    sender_email: str = "interlock@example.com"
    crm_base_url: str = ""
    helpdesk_base_url: str = ""
    # The connectors' secrets (Secrets Manager names; empty: none) and the sales-ops lead workflow's connectors
    # (interlock.connectors; workflows/sales_lead/README.md). Locally the URLs point at the local fakes.
    crm_token_secret: str = ""
    enrichment_base_url: str = ""
    enrichment_key_secret: str = ""
    slack_api_url: str = ""
    slack_token_secret: str = ""
    # A laptop's Slack token (the local fake's); a deployment names slack_token_secret and leaves this empty.
    slack_token: str = ""
    # The WhatsApp Cloud API (interlock.connectors.whatsapp): the Graph API's base (https://graph.facebook.com; empty:
    # not configured), its version, and the secret holding the access token. Locally the URL is the local fake's.
    whatsapp_graph_url: str = ""
    whatsapp_api_version: str = "v23.0"
    whatsapp_token_secret: str = ""
    # A laptop's Graph API token (the local fake's); a deployment names whatsapp_token_secret and leaves this empty.
    whatsapp_token: str = ""
    # A requested discount above this percentage waits for the sales manager's approval.
    sales_discount_approval_pct: str = "15"
    # Failed-payment recovery (workflows/payment_recovery/README.md): each wait for Stripe's next event for the
    # invoice, the reminders sent before customer success is asked, and who customer success is (empty: no email;
    # the run still ends escalated, with its reason).
    payment_wait_seconds: str = str(3 * 24 * 3600)
    payment_reminders: str = "2"
    customer_success_email: str = ""
    # The ERP connector (interlock.connectors.erp: vendor master, purchase orders, the ledger) and its token's
    # secret (empty: none). Locally the URL points at the local fake ERP.
    erp_base_url: str = ""
    erp_token_secret: str = ""
    # Invoice intake (workflows/invoice_intake/README.md), amounts in the invoice's own currency: a clean invoice
    # whose total is below invoice_auto_limit is recorded without a person; any flag, or a total at or above it,
    # needs one approver; a total at or above invoice_two_person_limit needs two different approvers. The total
    # may differ from the PO's remaining amount by invoice_po_tolerance_pct percent (either way) without a flag.
    invoice_auto_limit: str = "1000"
    invoice_two_person_limit: str = "10000"
    invoice_po_tolerance_pct: str = "2"
    # Who the daily past-due check's follow-ups email about a recorded invoice still unpaid after its due date
    # (empty: nobody; each run still ends escalated, with its reason).
    payables_email: str = ""
    # The assistant (workflows/assistant/README.md; docs/conversations.md): how long a turn waits for the rest of a
    # burst, the most earlier turns its decision reads, the approved WhatsApp template sent when the 24-hour window
    # is closed (name or name:language; empty: nothing can be sent then), the Slack channel a hand-off is posted to.
    assistant_debounce_seconds: str = "3"
    assistant_history_turns: str = "20"
    assistant_reengagement_template: str = ""
    assistant_support_channel: str = ""
    # Who is emailed the link to the hand-off page (one address; empty: no email), and how long a link works at most.
    assistant_handoff_email: str = ""
    assistant_handoff_ttl_seconds: str = str(72 * 3600)
    powertools_trace_disabled: str = "true"
    # The AI decision layer (interlock.settings.AiSettings; docs/ai.md).
    ai_provider: str = "auto"
    ai_model_tiers: str = "gpt-4.1-mini,gpt-4.1-nano"
    ai_retries_per_tier: str = "1"
    ai_call_timeout_seconds: str = "20"
    ai_run_max_tokens: str = "20000"
    ai_run_max_cost_usd: str = "0.05"
    ai_prices: str = ""
    # An OpenAI-compatible endpoint (Azure OpenAI's v1 URL, vLLM, Ollama, a LiteLLM proxy); empty: OpenAI.
    openai_base_url: str = ""
    # Uploads (interlock.uploads; docs/finance.md, Take the document): how long a presigned URL works, the largest
    # document, the days an upload is kept (the bucket's lifecycle), and where URLs point (empty: S3 itself;
    # locally the runtime's own /_local/uploads).
    upload_url_ttl_seconds: str = "300"
    upload_max_bytes: str = str(20 * 1024 * 1024)
    upload_retention_days: str = "3"
    upload_endpoint_url: str = ""
    # -- the AWS stack only (infra/; docs/deploy.md) --
    # Who the alarm topic emails (an SNS email subscription, confirmed by a link); empty: nobody, and
    # synthesis warns.
    alarm_email: str = ""
    # "true" lets a synthesis keep placeholder (example.com) sender/approver addresses, with a warning: for
    # tests and `make synth`. A deployment with them is refused.
    allow_placeholder_emails: str = "false"
    # Steady requests per second per API method (the burst is twice that), by route group.
    api_rate_webhooks: str = "50"
    api_rate_approvals: str = "10"
    api_rate_handoffs: str = "10"
    api_rate_runs: str = "10"
    api_rate_uploads: str = "10"
    api_rate_dlqs: str = "2"
    # Requests per source IP per 5 minutes above which a WAF web ACL on the API stage blocks; empty: no WAF.
    waf_rate_limit: str = ""
    # "false" drops the functions' reserved concurrency (an account whose concurrency quota is too small).
    reserved_concurrency: str = "true"

    def get(self, name: str) -> str:
        if not hasattr(self, name):
            raise KeyError(f"unknown deployment setting {name!r}")
        return str(getattr(self, name))
