"""OpenAI chat-completions client that asks for a call analysis as a JSON
object (response_format json_object) and validates what comes back."""

from __future__ import annotations

import dataclasses
import json

from resilience.errors import ProviderBadResponse
from resilience.providers.base import ProviderClient, require

SYSTEM_PROMPT = (
    "You analyse transcripts of sales calls. Answer with one JSON object with the keys: "
    '"summary" (string, 2-4 sentences), "sentiment" (number from -1 to 1, the customer\'s), '
    '"score" (integer 0-100, how well the rep ran the call), "topics" (list of short strings), '
    '"action_items" (list of strings).'
)


@dataclasses.dataclass(frozen=True)
class CallAnalysisResult:
    summary: str
    sentiment: float
    score: int
    topics: list[str]
    action_items: list[str]
    model: str


def parse_analysis(service: str, content: str, model: str) -> CallAnalysisResult:
    try:
        data = json.loads(content)
        summary = str(data["summary"]).strip()
        sentiment = float(data["sentiment"])
        score = int(data["score"])
        topics = [str(t) for t in data.get("topics", [])][:20]
        action_items = [str(a) for a in data.get("action_items", [])][:20]
    except (ValueError, TypeError, KeyError) as exc:
        raise ProviderBadResponse(service, f"analysis is not the JSON asked for: {exc}", body=content) from exc
    if not summary or not -1 <= sentiment <= 1 or not 0 <= score <= 100:
        raise ProviderBadResponse(service, "analysis values out of range", body=content)
    return CallAnalysisResult(summary, sentiment, score, topics, action_items, model)


class OpenAIClient(ProviderClient):
    service = "openai"

    @property
    def model(self) -> str:
        return self.config.get("model", "gpt-4o-mini")

    def chat_completion(self, messages: list[dict], **options: object) -> dict:
        body = self.request_json(
            "POST", "/chat/completions", json={"model": self.model, "messages": messages, **options}
        )
        require(self.service, body, "choices")
        if not body["choices"]:
            raise ProviderBadResponse(self.service, "no choices in the answer")
        return body

    def analyse_transcript(self, transcript_text: str) -> CallAnalysisResult:
        body = self.chat_completion(
            [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": transcript_text}],
            response_format={"type": "json_object"},
            temperature=0,
        )
        try:
            content = body["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as exc:
            raise ProviderBadResponse(self.service, "answer lacks choices[0].message.content") from exc
        return parse_analysis(self.service, content, body.get("model", self.model))
