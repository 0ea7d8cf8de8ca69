"""The Dixa API's streams, data only: each names its endpoint and what sets it apart; the hooks are in dixa_api.py.

Endpoint facts are in ../shared/docs/dixa-api.md ("§" below).
"""

from __future__ import annotations

from source_dixa.dixa_api import DixaApiStream, DixaApiWindowedStream


class Agents(DixaApiStream):
    """GET /v1/agents: https://docs.dixa.io/openapi/dixa-api/v1/tag/Agents/"""

    primary_key = "id"
    endpoint = "agents"
    paginated = True
    timestamp_fields = ("createdAt",)


class EndUsers(DixaApiStream):
    """GET /v1/endusers: https://docs.dixa.io/openapi/dixa-api/v1/tag/End-Users/"""

    primary_key = "id"
    endpoint = "endusers"
    paginated = True
    timestamp_fields = ("createdAt",)


class Teams(DixaApiStream):
    """GET /v1/teams: https://docs.dixa.io/openapi/dixa-api/v1/tag/Teams/"""

    primary_key = "id"
    endpoint = "teams"


class TeamMembers(DixaApiStream):
    """GET /v1/teams/{teamId}/agents, for every team: https://docs.dixa.io/openapi/dixa-api/v1/tag/Teams/"""

    primary_key = ["team_id", "id"]  # noqa: RUF012 - the CDK types composite keys as a list
    endpoint = "teams/{parent_id}/agents"
    parent_stream = Teams
    parent_key = "team_id"


class Queues(DixaApiStream):
    """GET /v1/queues: https://docs.dixa.io/openapi/dixa-api/v1/tag/Queues/"""

    primary_key = "id"
    endpoint = "queues"


class QueueMembers(DixaApiStream):
    """GET /v1/queues/{queueId}/members, for every queue: https://docs.dixa.io/openapi/dixa-api/v1/tag/Queues/"""

    primary_key = ["queue_id", "agentId"]  # noqa: RUF012 - the CDK types composite keys as a list
    endpoint = "queues/{parent_id}/members"
    parent_stream = Queues
    parent_key = "queue_id"


class Tags(DixaApiStream):
    """GET /v1/tags: https://docs.dixa.io/openapi/dixa-api/v1/tag/Tags/"""

    primary_key = "id"
    endpoint = "tags"
    # Without it Dixa lists active tags only, and conversations still carry retired ones (§4).
    params = (("includeDeactivated", "true"),)


class CustomAttributes(DixaApiStream):
    """GET /v1/custom-attributes: https://docs.dixa.io/openapi/dixa-api/v1/tag/Custom-Attributes/"""

    primary_key = "id"
    endpoint = "custom-attributes"
    timestamp_fields = ("createdAt", "updatedAt")


class ContactEndpoints(DixaApiStream):
    """GET /v1/contact-endpoints: https://docs.dixa.io/openapi/dixa-api/v1/tag/Contact-Endpoints/"""

    primary_key = ["_type", "endpoint"]  # noqa: RUF012 - the CDK types composite keys as a list
    endpoint = "contact-endpoints"
    endpoint_from = ("address", "number")


class AgentPresence(DixaApiStream):
    """GET /v1/agents/presence: https://docs.dixa.io/openapi/dixa-api/v1/tag/Agents/"""

    primary_key = ["userId", "requestTime"]  # noqa: RUF012 - the CDK types composite keys as a list
    endpoint = "agents/presence"
    bare_array = True
    timestamp_fields = ("requestTime", "lastSeen")


class ActivityLogs(DixaApiWindowedStream):
    """GET /v1/conversations/activitylog: https://docs.dixa.io/openapi/dixa-api/v1/tag/Conversations/"""

    primary_key = "id"
    endpoint = "conversations/activitylog"
    paginated = True
    timestamp_fields = ("activityTimestamp",)
    cursor_field = "activityTimestamp"
    from_param = "fromDatetime"
    to_param = "toDatetime"
