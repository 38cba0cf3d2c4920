"""Custom scalars: DateTime is always serialised as ISO 8601 in UTC; Upload is Strawberry's, described."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import strawberry
from graphql import GraphQLError
from strawberry.file_uploads import Upload
from strawberry.types.scalar import ScalarDefinition


def _serialize(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse(value: object) -> datetime:
    # GraphQLError: a bad value is the client's error (BAD_USER_INPUT), as a literal or a variable.
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise GraphQLError("DateTime must be an ISO 8601 string")
    if parsed.tzinfo is None:
        raise GraphQLError("DateTime must carry a time zone (use Z for UTC)")
    return parsed.astimezone(UTC)


DateTime = strawberry.scalar(
    name="DateTime",
    description="A date and time as an RFC 3339 (ISO 8601) string, always in UTC with millisecond "
    "precision, e.g. 2026-11-26T10:00:00.000Z. As input, any offset is accepted (and converted to "
    "UTC), but one is required.",
    specified_by_url="https://datatracker.ietf.org/doc/html/rfc3339",
    serialize=_serialize,
    parse_value=_parse,
)

def _as_is(value: object) -> object:
    return value  # the multipart parser has already put the file object in the variables


# Strawberry's own Upload scalar (identity both ways, like its UploadDefinition), described.
UploadScalar = strawberry.scalar(
    name="Upload",
    description="A file sent as a part of a GraphQL multipart request (POST multipart/form-data with "
    "`operations` and `map` fields); in variables it is null, mapped to the file part.",
    specified_by_url="https://github.com/jaydenseric/graphql-multipart-request-spec",
    serialize=_as_is,
    parse_value=_as_is,
)

SCALAR_MAP: Mapping[object, ScalarDefinition] = {datetime: DateTime, Upload: UploadScalar}
