"""AWS sessions, clients and errors: the one place s3rules makes a boto3 client.

Every client comes from boto3's default session when the program set one up (so its event
hooks see our calls), with the retry policy of ``policy``. AWS errors become an
``AwsSetupError`` that says what to do; credentials never appear in messages.
"""
from __future__ import annotations

import contextlib

import boto3
from botocore.exceptions import (BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError,
                                 NoRegionError, PartialCredentialsError)

from ..errors import AwsSetupError
from .policy import RETRY_CONFIG


def session():
    """boto3's default session when the program set one up, else a new one."""
    return boto3.DEFAULT_SESSION or boto3.session.Session()


def s3_client():
    """An S3 client for the lease and manifests (storage checks go through s3fs)."""
    return session().client("s3", config=RETRY_CONFIG)


class SubmitRefused(Exception):
    """SubmitJob was throttled: Batch created nothing, so trying again is safe."""


class SubmitUnknown(Exception):
    """SubmitJob's answer was lost (connection dropped, 5xx): the job may or may not exist."""


_PERMISSION_HINT = {
    "SubmitJob": "batch:SubmitJob", "ListJobs": "batch:ListJobs", "DescribeJobs": "batch:DescribeJobs",
    "DescribeJobQueues": "batch:DescribeJobQueues", "DescribeJobDefinitions": "batch:DescribeJobDefinitions",
    "TerminateJob": "batch:TerminateJob", "TagResource": "batch:TagResource",
    "RegisterJobDefinition": "batch:RegisterJobDefinition and batch:TagResource (and iam:PassRole on the "
                             "job_role and execution_role)",
    "GetLogEvents": "logs:GetLogEvents",
}


@contextlib.contextmanager
def aws_errors(action: str):
    """Turn boto errors into one-paragraph ``AwsSetupError``s naming the fix."""
    try:
        yield
    except NoCredentialsError:
        raise AwsSetupError(f"{action}: no AWS credentials found. Set AWS_PROFILE (see `aws configure`), "
                            "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run where an instance "
                            "or task role provides them.") from None
    except PartialCredentialsError as exc:
        raise AwsSetupError(f"{action}: incomplete AWS credentials ({exc.kwargs.get('cred_var', 'a value')} "
                            "is missing). Set it too, or unset AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                            "and use AWS_PROFILE (see `aws configure`) or an instance or task role.") from None
    except NoRegionError:
        raise AwsSetupError(f"{action}: no AWS region set. Set AWS_DEFAULT_REGION (e.g. us-east-1) or "
                            "`region` in your AWS profile.") from None
    except EndpointConnectionError as exc:
        raise AwsSetupError(f"{action}: cannot reach {exc.kwargs.get('endpoint_url', 'the AWS endpoint')}. "
                            "Check your network, region and any AWS_ENDPOINT_URL setting.") from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code, message = error.get("Code", "Error"), error.get("Message", "")
        op = exc.operation_name
        if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation",
                    "UnrecognizedClientException", "InvalidClientTokenId", "ExpiredTokenException",
                    "ExpiredToken", "InvalidSignatureException", "SignatureDoesNotMatch"):
            need = _PERMISSION_HINT.get(op, op)
            raise AwsSetupError(f"{action}: AWS refused {op} ({code}: {message}). Check that your credentials "
                                f"are valid and allow {need}; README.md lists the permissions s3rules needs."
                                ) from None
        raise AwsSetupError(f"{action}: {op} failed ({code}: {message}).") from None
    except BotoCoreError as exc:
        raise AwsSetupError(f"{action}: {exc}") from None


