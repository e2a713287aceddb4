"""The embedded local cloud: the topology realised in one process, with no AWS account and no Docker.

moto plays DynamoDB, SQS, Step Functions (executing the real ASL), SES and Secrets Manager; a stdlib
HTTP server plays API Gateway; a poller plays the SQS event source mapping; another plays the
EventBridge rules on Step Functions' execution status changes; the handlers in
``functions/`` run in-process behind a Lambda-shaped invoke. Start it with ``interlock run``.

This package imports nothing heavy at import time: ``interlock send`` uses :mod:`interlock.local.secrets`
and must stay fast, so moto and boto3 are imported only by the modules that run the cloud.
"""

from __future__ import annotations

import logging

LOGGER_NAMESPACE = "localcloud"


def get_logger(module: str) -> logging.Logger:
    """A logger for one of this package's modules, deliberately named without "interlock".

    Powertools names its logger after the service (``interlock``): under ``interlock.local`` our
    gateway and poller lines would propagate into its JSON handler and be stamped with the Lambda
    context of whichever function ran last. And once a Powertools Logger exists it filters the root
    handlers' records whose logger name merely *contains* the service name, so even
    ``interlock_local`` would go silent after the first handler is imported.
    """
    return logging.getLogger(f"{LOGGER_NAMESPACE}.{module.rsplit('.', 1)[-1]}")
