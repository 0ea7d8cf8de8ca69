"""The Dixa API's data: agents, end users, teams, queues, tags, custom attributes, contact endpoints, presence and
the conversation activity log, seeded and deterministic, shaped after dixa-api.md §4 and the public v1 models.

It draws from its own random stream, so the Exports API's data is the same whatever the Dixa API sizes are. The
first agents, queues, tags and custom attributes are the very ones the Exports records name (same ids and names),
and activity events point at exported conversation ids, so the two APIs join like a real account's.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from .common import DAY_MS, HOUR_MS, MINUTE_MS, iso_local, iso_utc, phone, pick, randint, uuid4
from .exports_data import _SELECT_OPTIONS, Pools

User = dict[str, Any]  # an ActivityLogUser: {id, name?, email?, phoneNumber?}

# (display, ascii slug) pairs with diacritics, CJK, Cyrillic, quotes and a backslash, so encoding bugs show.
_FIRST = (
    ("Astrid", "astrid"), ("Jürgen", "juergen"), ("Siobhán", "siobhan"), ("Ana-María", "ana"), ("太郎", "taro"),
    ("Łukasz", "lukasz"), ("Văn An", "an"), ("Ольга", "olga"), ("Aïcha", "aicha"), ("Chloé", "chloe"),
    ("Mia 🌸", "mia"), ("Søren", "soren"), ("John", "john"), ("Oliver", "oliver"), ("Maja", "maja"),
    ("Elias", "elias"), ("Zoë", "zoe"), ('"Kim"', "kim"),
)  # fmt: skip
_LAST = (
    ("Ødegård", "odegard"), ("Müller", "mueller"), ("O'Connor", "oconnor"), ("Pérez", "perez"), ("山田", "yamada"),
    ("Żółć", "zolc"), ("Nguyễn", "nguyen"), ("Ковалёва", "kovaleva"), ("Benali", "benali"), ("Dubois", "dubois"),
    ("Sato", "sato"), ("Kierkegård", "kierkegard"), ("Smith", "smith"), ("Back\\slash", "backslash"),
    ("Hansen", "hansen"), ("Lindqvist", "lindqvist"),
)  # fmt: skip
_MIDDLE = ("Marie", "Louise", "Emil", "Ægir")
_TEAM_NAMES = ("Tier 1 🎧", "Billing", "Nordics – Øresund", 'VIP "Gold" squad', "東京 Night shift", "Escalations\\L2")  # noqa: RUF001
_COLORS = ("#E53935", "#8E24AA", "#3949AB", "#00897B", "#FDD835", "#6D4C41", "#546E7A")
_CHANNELS = ("Email", "WidgetChat", "PstnPhone", "Sms", "WhatsApp", "FacebookMessenger", "ContactForm", "Callback")
_LANGUAGES = ("en", "da", "de", "sv", "nb", "ja", "fr")
_SUBJECTS = ("Order #{n} hasn't arrived", 'Refund for "damaged" item', "Levering til 東京 📦", "Tab\tand\nnewline")
_RATING_MESSAGES = ("Great help, thanks! 👍", 'He said "we\'ll call back"', "Line one\nLine two", "Très bien")
# (identifier, label, input type) of the Contact-level attributes added after the Exports API's Conversation ones.
_CONTACT_ATTRIBUTES = (
    ("customer_tier", "Customer tier", "Select"), ("loyalty_id", "Loyalty ID", "Text"),
    ("preferred_language", "Preferred language 🌍", "Select"), ("crm_url", "CRM link", "Text"),
    ("vat_number", "VAT no.", "Text"), ("segment", "Segment", "Select"),
)  # fmt: skip
_TIERS = ("Gold", "Silver", "Bronze", "Ørestad VIP")

# Every activity type of the v1 model (32), with who authors it: "customer", "agent" or "" (the system, no author).
# Stories open with one of the first two and close with ConversationClosed; the middle draws from _MIDDLE_TYPES.
_AUTHOR_OF = {
    "ConversationCreatedByCustomer": "customer", "ConversationCreatedByAgent": "agent",
    "ConversationAutoreplySent": "", "ConversationOffered": "", "ConversationOfferAccepted": "agent",
    "ConversationOfferRejected": "agent", "ConversationOfferTimeout": "", "ConversationAssigned": "agent",
    "ConversationUnassigned": "agent", "ConversationClaimed": "agent", "ConversationReserved": "agent",
    "ConversationEndUserReplaced": "agent", "ConversationLanguageUpdated": "agent", "ConversationPending": "agent",
    "MessageAddedByCustomer": "customer", "MessageAddedByAgent": "agent", "NoteAdded": "agent",
    "TagAdded": "agent", "TagRemoved": "agent", "TransferInitiated": "agent", "TransferSuccessful": "agent",
    "TransferFailed": "agent", "FollowupAdded": "agent", "FollowupRemoved": "agent", "FollowupExpired": "",
    "ConversationClosed": "agent", "ConversationReopened": "customer", "ConversationRatingScheduled": "",
    "ConversationRatingOffered": "", "ConversationRated": "customer", "ConversationRatingCancelled": "agent",
    "ConversationRatingUnscheduled": "",
}  # fmt: skip
ACTIVITY_TYPES = tuple(_AUTHOR_OF)
_MIDDLE_TYPES = ("MessageAddedByCustomer",) * 6 + ("MessageAddedByAgent",) * 6 + ("NoteAdded",) * 2 + (
    "TagAdded", "TagAdded", "TagRemoved", "ConversationUnassigned", "ConversationClaimed", "ConversationReserved",
    "ConversationEndUserReplaced", "ConversationLanguageUpdated", "ConversationPending", "TransferInitiated",
    "TransferSuccessful", "TransferFailed", "FollowupAdded", "FollowupRemoved", "FollowupExpired",
    "ConversationOfferRejected", "ConversationOfferTimeout",
)  # fmt: skip
_AFTER_CLOSE = ("ConversationRatingScheduled", "ConversationRatingOffered", "ConversationRated",
                "ConversationRatingCancelled", "ConversationRatingUnscheduled", "ConversationReopened")  # fmt: skip


def stamp(rng: random.Random, ms: int) -> str:
    """An ISO timestamp the way the Dixa API mixes them: mostly `...Z[GMT]`, some plain `...Z`, a few `...Z[UTC]`."""
    draw = rng.random()
    return iso_utc(ms, "GMT" if draw < 0.85 else "UTC" if draw < 0.87 else "")


class DixaGenerator:
    """Builds the account from one random stream. Pure apart from the rng it is given."""

    def __init__(self, rng: random.Random, pools: Pools, start_ms: int, end_ms: int, conversation_ids: range) -> None:
        self.rng = rng
        self.pools = pools
        self.start_ms, self.end_ms = start_ms, end_ms
        self.conversation_ids = conversation_ids if len(conversation_ids) else range(1000, 2000)
        self.organization_id = uuid4(rng)
        self.agent_users: list[User] = []
        self.customer_users: list[User] = []
        self.queue_names: list[tuple[str, str]] = []
        self.tag_names: list[str] = []
        self.contact_attributes: list[tuple[str, str, str, str]] = []  # id, label, identifier, input type

    def _created(self, rng: random.Random, years: float = 2.0) -> str:
        return stamp(rng, self.start_ms - int(rng.random() * years * 365 * DAY_MS))

    # ---- people ---------------------------------------------------------------------------------------------------

    def agents(self, count: int) -> list[dict[str, Any]]:
        return [self.agent(self.rng, index) for index in range(count)]

    def agent(self, rng: random.Random, index: int) -> dict[str, Any]:
        if index < len(self.pools.agents):  # the agents the Exports records name
            agent_id, display, email, number = self.pools.agents[index]
            first, _, last = display.partition(" ")
        else:
            (first, first_slug), (last, last_slug) = pick(rng, _FIRST), pick(rng, _LAST)
            agent_id, display = uuid4(rng), f"{first} {last}"
            email = f"{first_slug}.{last_slug}{index}@support.acme.example"
            number = phone(rng) if rng.random() < 0.6 else None
        record: dict[str, Any] = {"id": agent_id, "createdAt": self._created(rng), "displayName": display}
        record["email"] = email
        if rng.random() < 0.6:
            record["avatarUrl"] = f"https://files.dixa.io/public/avatars/{agent_id}.png"
        if number is not None:
            record["phoneNumber"] = number
        record["additionalEmails"] = [f"{email.split('@')[0]}@acme.example"] if rng.random() < 0.2 else []
        record["additionalPhoneNumbers"] = [phone(rng)] if rng.random() < 0.15 else []
        record["firstName"], record["lastName"] = first, last
        record["middleNames"] = [pick(rng, _MIDDLE)] if rng.random() < 0.15 else []
        record["roles"] = pick(rng, (["Agent"], ["Agent"], ["Agent", "Administrator"], ["Agent", "TeamLead"]))
        user: User = {"id": agent_id, "name": display, "email": email}
        if number is not None:
            user["phoneNumber"] = number
        self.agent_users.append(user)
        return record

    def end_user(self, rng: random.Random, index: int) -> dict[str, Any]:
        """One end user; called once per user, so it stays lean (the benchmark asks for 200k)."""
        user_id = uuid4(rng)
        (first, first_slug), (last, last_slug) = pick(rng, _FIRST), pick(rng, _LAST)
        draw = rng.random()
        number = phone(rng) if draw < 0.45 else None
        record: dict[str, Any] = {"id": user_id, "createdAt": self._created(rng, 3.0)}
        if draw < 0.08 and number is not None:
            # A caller Dixa knows only by number: the number is the display name, and there is no email.
            record["displayName"] = number
            email = None
        else:
            record["displayName"] = f"{first} {last}"
            email = f"{first_slug}.{last_slug}.{index}@example.com"
            record["email"] = email
            record["firstName"], record["lastName"] = first, last
        if draw > 0.97:
            record["avatarUrl"] = f"https://files.dixa.io/public/avatars/{user_id}.jpg"
        if number is not None:
            record["phoneNumber"] = number
        record["additionalEmails"] = [f"{first_slug}+{index}@example.org"] if draw > 0.9 else []
        record["additionalPhoneNumbers"] = [phone(rng)] if 0.3 < draw < 0.35 else []
        record["middleNames"] = []
        if draw < 0.3:
            record["externalId"] = f"CRM-{index:07d}"
        attributes = []
        for attribute_id, label, identifier, kind in self.contact_attributes:
            if rng.random() < 0.3:
                value: str | list[str] = (
                    [pick(rng, _SELECT_OPTIONS)] if kind == "Select" and rng.random() < 0.3
                    else pick(rng, _TIERS) if kind == "Select" else f"{identifier}-{index}-ø"
                )  # fmt: skip
                attributes.append({"id": attribute_id, "name": label, "identifier": identifier, "value": value})
        record["customAttributes"] = attributes
        if index < 1000:
            user: User = {"id": user_id, "name": record["displayName"]}
            if email is not None:
                user["email"] = email
            if number is not None:
                user["phoneNumber"] = number
            self.customer_users.append(user)
        return record

    # ---- organisation ---------------------------------------------------------------------------------------------

    def teams(self, count: int, agents: list[dict[str, Any]]) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
        """(team, its members) pairs; members are team-less records, as /v1/teams/{teamId}/agents serves them."""
        rng, teams = self.rng, []
        for index in range(count):
            name = _TEAM_NAMES[index % 6] + (f" {index // 6 + 1}" if index >= 6 else "")
            chosen = _members(rng, agents, count, index, 8)
            members = []
            for agent in chosen:
                member = {"id": agent["id"], "name": agent["displayName"], "email": agent["email"]}
                if "phoneNumber" in agent:
                    member["phoneNumber"] = agent["phoneNumber"]
                members.append(member)
            teams.append(({"id": uuid4(rng), "name": name}, members))
        return teams

    def queues(self, count: int, agents: list[dict[str, Any]]) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
        rng, queues = self.rng, []
        for index in range(count):
            pooled = index < len(self.pools.queues)
            queue_id, name = self.pools.queues[index] if pooled else (uuid4(rng), f"Queue {index}")
            self.queue_names.append((queue_id, name))
            queue: dict[str, Any] = {
                "id": queue_id, "name": name, "isDefault": index == 0, "organizationId": self.organization_id,
                "isDoNotOfferEnabled": rng.random() < 0.3, "doNotOfferTimeouts": {"Email": 3600, "WidgetChat": 120},
            }  # fmt: skip
            if rng.random() < 0.8:
                queue["queueThresholds"] = {
                    "SlaTimeLimit": 300,
                    "AvailableAgents": 1,
                    "LongestWait": 600,
                    "SlaPercentage": 80,
                    "WaitingConversations": randint(rng, 5, 50),
                }
                queue["slaCalculationMethod"] = "AbandonedIgnored"
            queue["offerTimeout"] = pick(rng, (30, 45, 60))
            queue["offeringAlgorithm"] = pick(rng, ("AllAtOnce", "LongestIdle", "OneAtATimeRandom",
                                                    "AgentPriorityLongestIdle"))  # fmt: skip
            queue["memberListType"] = pick(rng, ("Default", "SkillBased"))
            if rng.random() < 0.7:
                queue["usages"] = {"queueId": queue_id, "usages": {"Email": [uuid4(rng)], "PstnPhone": []}}
            queue["wrapupTimeout"] = pick(rng, (0, 30, 120))
            if index > 0:
                queue["priority"] = index
            queue["isPreferredAgentEnabled"] = rng.random() < 0.4
            queue["offerAbandonedConversations"] = rng.random() < 0.5
            chosen = _members(rng, agents, count, index, 10)
            members = [{"agentId": agent["id"], "priority": randint(rng, 1, 3)} if rng.random() < 0.7
                       else {"agentId": agent["id"]} for agent in chosen]  # fmt: skip
            queues.append((queue, members))
        return queues

    def tags(self, count: int) -> list[dict[str, Any]]:
        rng, tags = self.rng, []
        for index in range(count):
            if index < len(self.pools.tags):
                tag_id, name, inactive = self.pools.tags[index]
            else:
                tag_id, name, inactive = uuid4(rng), f"topic-{index} ✨", index % 4 == 3
            self.tag_names.append(name)
            tags.append({"id": tag_id, "name": name, "color": pick(rng, _COLORS),
                         "state": "Inactive" if inactive else "Active"})  # fmt: skip
        return tags

    def custom_attributes(self, count: int) -> list[dict[str, Any]]:
        rng, records = self.rng, []
        for index in range(count):
            if index < len(self.pools.attributes):  # the Conversation attributes the Exports records carry
                attribute_id, identifier, data_type, archived, _ = self.pools.attributes[index]
                entity, label, kind = "Conversation", identifier.replace("_", " ").capitalize(), data_type
            else:
                identifier, label, kind = _CONTACT_ATTRIBUTES[(index - len(self.pools.attributes)) % 6]
                if index - len(self.pools.attributes) >= 6:
                    identifier = f"{identifier}_{index}"
                attribute_id, entity, archived = uuid4(rng), "Contact", False
                self.contact_attributes.append((attribute_id, label, identifier, kind))
            definition: dict[str, Any]
            if kind == "Text":
                definition = {"_type": "Text"}
                if rng.random() < 0.5:
                    definition["placeholder"] = f"e.g. {identifier}-123"
            else:
                options = _TIERS if entity == "Contact" else _SELECT_OPTIONS
                definition = {"_type": "Select", "options": [
                    {"id": uuid4(rng), "value": option, "label": option, "isDeactivated": False, "nestedOptions": []}
                    for option in options]}  # fmt: skip
            created_ms = self.start_ms - randint(rng, 30, 700) * DAY_MS
            record: dict[str, Any] = {"id": attribute_id, "entityType": entity, "identifier": identifier,
                                      "label": label}  # fmt: skip
            if rng.random() < 0.7:
                record["description"] = f"{label} — set by the “{entity}” form"
            record.update(inputDefinition=definition, createdAt=stamp(rng, created_ms),
                          updatedAt=stamp(rng, created_ms + randint(rng, 0, 20) * DAY_MS),
                          isRequired=index % 5 == 1, isArchived=archived, isDeactivated=index % 7 == 6)  # fmt: skip
            records.append(record)
        return records

    def contact_endpoints(self, count: int) -> list[dict[str, Any]]:
        rng, records = self.rng, []
        for index in range(count):
            record: dict[str, Any]
            if index % 2 == 0:
                record = {"address": f"support{index // 2 or ''}@acme.example"}
                if rng.random() < 0.5:
                    record["senderOverride"] = f"Acme Kundeservice Ø <noreply{index}@acme.example>"
                if index:
                    record["name"] = f"Inbox {index // 2} 📥"
                record["_type"] = "EmailEndpoint"
            else:
                record = {"number": phone(rng), "functionality": pick(rng, (["Voice"], ["Voice", "Sms"], ["Sms"]))}
                if rng.random() < 0.7:
                    record["name"] = pick(rng, ("Main line", "Sverige växel", "Hotline – 24/7"))  # noqa: RUF001
                record["_type"] = "TelephonyEndpoint"
            records.append(record)
        return records

    def presence(self, agents: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A point-in-time snapshot taken just before end_ms; times are zone-less UTC."""
        rng, records = self.rng, []
        taken_ms = self.end_ms - 1000
        for agent in agents:
            if rng.random() < 0.1:
                continue  # never logged in: no presence at all
            online = rng.random() < 0.6
            record: dict[str, Any] = {"userId": agent["id"], "requestTime": iso_local(taken_ms + randint(rng, 0, 50))}
            if online or rng.random() < 0.7:
                record["lastSeen"] = iso_local(taken_ms - randint(rng, 0, 3 * DAY_MS if not online else 60_000))
            record["presenceStatus"] = pick(rng, ("Working", "Away")) if online else "Away"
            record["connectionStatus"] = "Online" if online else "Offline"
            record["activeChannels"] = rng.sample(_CHANNELS, randint(rng, 1, 3)) if online else []
            records.append(record)
        return records

    # ---- activity log ---------------------------------------------------------------------------------------------

    def activity(self, count: int) -> Iterator[tuple[int, str, dict[str, Any]]]:
        """`count` events as (activity ms, id, record): conversation stories over [start_ms, end_ms), plus events
        pinned on the range start, round days and hours, and groups sharing one timestamp."""
        rng, produced = self.rng, 0
        pinned = _pinned_times(rng, count, self.start_ms, self.end_ms)
        while produced < count:
            at_ms = self.start_ms + int(rng.random() * (self.end_ms - self.start_ms))
            for kind in self._story(rng):
                if produced >= count or at_ms >= self.end_ms:
                    break
                event_ms = pinned.get(produced, at_ms)
                yield event_ms, *self.event(rng, kind, event_ms, pick(rng, self.conversation_ids))
                produced += 1
                at_ms += randint(rng, 1, 20 * MINUTE_MS) if rng.random() < 0.8 else randint(rng, 0, 8 * HOUR_MS)

    @staticmethod
    def _story(rng: random.Random) -> list[str]:
        story = ["ConversationCreatedByCustomer" if rng.random() < 0.85 else "ConversationCreatedByAgent"]
        if rng.random() < 0.2:
            story.append("ConversationAutoreplySent")
        story += ["ConversationOffered", "ConversationOfferAccepted", "ConversationAssigned"]
        story += [pick(rng, _MIDDLE_TYPES) for _ in range(randint(rng, 1, 8))]
        story.append("ConversationClosed")
        if rng.random() < 0.4:
            story.append(pick(rng, _AFTER_CLOSE))
        return story

    def event(self, rng: random.Random, kind: str, at_ms: int, conversation_id: int) -> tuple[str, dict[str, Any]]:
        event_id = uuid4(rng)
        record: dict[str, Any] = {"id": event_id, "conversationId": conversation_id,
                                  "activityTimestamp": stamp(rng, at_ms), "_type": kind}  # fmt: skip
        author_kind = _AUTHOR_OF[kind]
        agent = pick(rng, self.agent_users) if self.agent_users else {"id": uuid4(rng)}
        customer = pick(rng, self.customer_users) if self.customer_users else {"id": uuid4(rng)}
        if author_kind and not (kind == "ConversationClosed" and rng.random() < 0.2):  # some closes are automatic
            record["author"] = agent if author_kind == "agent" else customer
        attributes = self._attributes(rng, kind, at_ms, agent, customer)
        if attributes is not None:
            record["attributes"] = attributes
        return event_id, record

    def _attributes(
        self, rng: random.Random, kind: str, at_ms: int, agent: User, customer: User
    ) -> dict[str, Any] | None:
        queue_id, queue_name = pick(rng, self.queue_names) if self.queue_names else (uuid4(rng), "Support")
        if kind.startswith("ConversationCreated"):
            return {"subject": pick(rng, _SUBJECTS).format(n=at_ms % 100_000)} if rng.random() < 0.6 else {}
        if kind.startswith("MessageAdded") or kind == "NoteAdded":
            attributes: dict[str, Any] = {"messageId": uuid4(rng)}
            if rng.random() < 0.3:
                attributes["avatarUrl"] = f"https://files.dixa.io/public/avatars/{agent['id']}.png"
            if kind == "MessageAddedByCustomer" and rng.random() < 0.7:
                attributes["fromEndpoint"] = customer.get("email") or customer.get("phoneNumber") or "unknown"
            return attributes
        if kind.startswith("Transfer"):
            attributes = {"destinationId": queue_id, "destinationType": "Queue"}
            attributes["transferType"] = pick(rng, ("Warm", "Cold"))
            if rng.random() < 0.7:
                attributes["destinationLabel"] = queue_name
            if kind == "TransferFailed":
                attributes["reason"] = "No agents available"
            return attributes
        if kind == "ConversationAutoreplySent":
            return {"templateName": "Out of office 🌙"}
        if kind == "ConversationOffered":
            return {"agentNames": [agent.get("name", "")], "queueLabel": queue_name}
        if kind == "ConversationAssigned":
            return {"agentId": agent["id"], "agentName": agent.get("name", "")}
        if kind == "ConversationUnassigned":
            return {"agent": agent} if rng.random() < 0.7 else {}
        if kind == "ConversationClaimed":
            return {"claimedFromLabel": queue_name, "claimedFromType": "Queue"}
        if kind == "ConversationReserved":
            return {"agent": agent, "queueId": queue_id, "queueName": queue_name, "reservationType": "PreferredAgent",
                    "validUntil": stamp(rng, at_ms + HOUR_MS)}  # fmt: skip
        if kind == "ConversationEndUserReplaced":
            return {"newUser": customer, "oldUser": pick(rng, self.customer_users) if self.customer_users else customer}
        if kind == "ConversationLanguageUpdated":
            return {"language": pick(rng, _LANGUAGES)}
        if kind == "ConversationRatingOffered":
            return {"agent": agent, "user": customer}
        if kind == "ConversationRatingScheduled":
            return {"ratingScheduledTime": stamp(rng, at_ms + 2 * HOUR_MS)}
        if kind in ("TagAdded", "TagRemoved"):
            return {"tag": pick(rng, self.tag_names) if self.tag_names else "vip"}
        if kind == "ConversationRated":
            rated: dict[str, Any] = {"agent": agent}
            if rng.random() < 0.9:
                rated["score"] = randint(rng, 1, 5)
            if rng.random() < 0.5:
                rated["message"] = pick(rng, _RATING_MESSAGES)
            return rated
        return None  # closed, reopened, pending, offer accepted/rejected/timeout, follow-ups, ...


def _members(rng: random.Random, agents: list[dict[str, Any]], count: int, index: int, most: int) -> list[Any]:
    """Some agents for team or queue `index` of `count`; the last of three or more has none (an empty list)."""
    if count >= 3 and index == count - 1:
        return []
    return rng.sample(agents, min(len(agents), randint(rng, 1, most)))


def _pinned_times(rng: random.Random, count: int, start_ms: int, end_ms: int) -> dict[int, int]:
    """{event index: activity ms} for boundary traps: the range start, round days and hours, and shared instants."""
    if count < 2:
        return {}
    first_day = -(-start_ms // DAY_MS) * DAY_MS
    days = list(range(first_day, end_ms, DAY_MS))
    first_hour = -(-start_ms // HOUR_MS) * HOUR_MS
    n_hours = (end_ms - first_hour + HOUR_MS - 1) // HOUR_MS
    wanted: list[int] = [start_ms]
    wanted += rng.sample(days, min(len(days), max(1, count // 150))) if days else []
    if n_hours > 0:
        wanted += [first_hour + randint(rng, 0, n_hours - 1) * HOUR_MS for _ in range(max(1, count // 150))]
    if days:
        wanted += [pick(rng, days)] * min(4, count // 10 + 1)  # several events on one round day
    for _ in range(min(3, count // 20)):
        wanted += [start_ms + int(rng.random() * (end_ms - start_ms))] * 2
    wanted = [ms for ms in wanted if start_ms <= ms < end_ms][:count]
    return dict(zip(rng.sample(range(count), len(wanted)), wanted, strict=True))
