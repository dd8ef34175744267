"""Realistic sales-call transcripts for the demo data and the search benchmark.

A conversation runs through the phases of a sales call: opening, discovery,
a walk through the product, objections (price, a competitor, timing,
security, integration, contract terms), pricing and next steps. Each phase
draws question-and-answer exchanges from its own lines and fills their slots
(company, competitor, seat count, price, dates) so that transcripts differ in
the words a search looks for. 30 to 80 turns; the rep is speaker "A", the
customer "B" and sometimes a colleague of theirs "C".

Turn times are spread over the call's duration in proportion to each turn's
words, with the rep's turns taking the call's talk ratio of the time, so the
transcript agrees with the analysis. Every draw comes from the generator that
is passed in: the same seed gives the same transcript.
"""

from __future__ import annotations

import random
from typing import TypedDict


class Utterance(TypedDict):
    speaker: str
    start_ms: int
    end_ms: int
    text: str


REP, CUSTOMER, COLLEAGUE = "A", "B", "C"
MIN_TURNS, MAX_TURNS = 30, 80

COMPETITORS = ["Chorusly", "Dealwise", "TalkTrack", "Pipewave", "Convoscope", "Salesgrid", "Callmetric"]
TOOLS = ["Salesforce", "HubSpot", "Pipedrive", "spreadsheets", "a homegrown CRM", "Zoho"]
FEATURES = [
    "the call scoring", "the talk-ratio coaching", "the deal risk alerts", "the CRM sync",
    "the automatic summaries", "the competitor tracking", "the forecast view", "the coaching playlists",
]  # fmt: skip
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October"]
COLLEAGUE_NAMES = ["Morgan", "Alex", "Jordan", "Casey", "Riley", "Taylor", "Jamie", "Robin"]

# (rep line, customer answer) pairs per phase. A line may be a tuple of ways to say it,
# one drawn per call, so that a given phrase is in some transcripts, not all.
Line = str | tuple[str, ...]
OPENING = [
    ("Hi {customer}, thanks for making the time today.", "Of course, happy to chat."),
    ("How has your week been so far?", "Busy, the end of the quarter is always hectic."),
    ("I'd like to spend a few minutes on your goals, then show you the product. Does that work?", "Sounds good."),
    ("Before we start, is anyone else joining from {company}?", "{colleague} might join a bit later."),
    ("I saw {company} just opened a new office, congratulations.", "Thanks, the team is growing fast."),
]
DISCOVERY = [
    (
        "How does your team review sales calls today?",
        "Honestly, mostly in {tool}, and managers listen to a few calls a week.",
    ),
    ("How many reps are on the team?", "About {seats} reps, and we are hiring another ten this year."),
    ("What made you look at call intelligence now?", "Our win rate dropped last quarter and we don't really know why."),
    (
        "What would success look like in six months?",
        "Ramp time for new reps down by a month, and a forecast we can trust.",
    ),
    (
        "Who else is involved in the decision?",
        "Our VP of Sales signs off, and IT has to approve anything that touches {tool}.",
    ),
    ("What is the biggest pain point for your managers?", "They spend hours listening to recordings to coach one rep."),
    ("How do you track what competitors come up on calls?", "We don't, it's all anecdotal from the reps."),
    ("Is there budget set aside for this?", "There is budget this quarter if the numbers work."),
    ("What's the timeline you're working against?", "We'd like something in place before {month}."),
    ("How do new reps learn your pitch today?", "They shadow senior reps for a few weeks, which doesn't scale."),
    ("Which calls matter most to review?", "Discovery calls, that's where deals are won or lost."),
    ("Do you record calls already?", "Yes, everything is recorded, nobody has time to listen to it."),
]
PRODUCT = [
    ("Let me share my screen and show you {feature}.", "Okay, I can see it."),
    ("Every call is transcribed and scored within a few minutes.", "How accurate are the transcripts?"),
    (
        "Accuracy is above ninety percent for English calls, even on bad lines.",
        "That's better than what we tried before.",
    ),
    ("Here you can see {feature} for each rep.", "Can managers filter that by team?"),
    ("Yes, by team, by rep and by date range.", "Nice, that would save us a lot of time."),
    ("The summary and action items land in {tool} automatically.", "So reps don't have to write notes anymore?"),
    ("Exactly, the notes write themselves.", "Our reps would love that."),
    ("You can search every call for a phrase, like a competitor's name.", "Can I search for pricing objections?"),
    ("Managers get an alert when a deal goes quiet for two weeks.", "That would have saved two deals last month."),
    ("This is the coaching view, with the talk ratio and longest monologue.", "Our reps definitely talk too much."),
]
OBJECTIONS = {
    "price": [
        ("How does the pricing compare with what you expected?", "Honestly, the price is higher than we budgeted."),
        ("What number did you have in mind?", "Closer to {low_price} dollars per seat."),
        ("I hear you. Most teams see the cost paid back within a quarter.", "I'd need to show that to our CFO."),
        ("Is the concern the total or the per-seat price?", "The total, with {seats} seats it adds up quickly."),
        (
            "Have pricing changes burned you before?",
            (
                "Last year we had a price increase from our current vendor, so we are careful.",
                "Our current vendor raised prices twice, so we are careful.",
                "We got burned by a renewal uplift last year.",
                "Not really, but finance watches renewals closely.",
            ),
        ),
        (
            "We lock the price for the whole contract term.",
            (
                "That would address the price increase worry.",
                "That helps, a locked rate matters to finance.",
                "Good, predictability is what we need.",
            ),
        ),
    ],
    "competitor": [
        ("Are you looking at other vendors?", "We're also talking to {competitor}."),
        ("What do you like about {competitor}?", "Their dashboard is simple, but the transcripts are weak."),
        ("How does this compare with {competitor}?", "Yours has better coaching, theirs is cheaper."),
        (
            "Many teams switch to us from {competitor} for the CRM sync.",
            "That's good to know, the sync is important to us.",
        ),
    ],
    "timing": [
        ("Is now the right time to start?", "Timing is tricky, we're in the middle of a reorg."),
        ("What would have to happen to start this quarter?", "We'd need the budget approved before {month}."),
        ("Would a smaller pilot help with the timing?", "A pilot with one team could work."),
    ],
    "security": [
        ("What does your security team need from us?", "They'll want a security review and your SOC 2 report."),
        ("Where is the data stored?", "Our legal team asks that about every vendor."),
        ("We can do the security review with your IT lead next week.", "Great, I'll ask {colleague} to set it up."),
    ],
    "integration": [
        ("Which systems does it need to connect to?", "{tool} and our calendar, that's a must."),
        ("The {tool} integration takes about an hour to set up.", "Our last integration took three months."),
    ],
    "contract": [
        ("Do you prefer an annual or a monthly contract?", "Annual, if there's a discount for it."),
        ("Legal usually reviews the contract in a week or two.", "Ours is slower, plan for a month."),
        ("We can add an opt-out after the first ninety days.", "That would make it easier to sign."),
    ],
}
PRICING = [
    ("For {seats} seats the list price is {price} dollars per seat per month.", "Is that billed annually?"),
    ("Yes, billed annually, with a {discount} percent discount on a two-year term.", "What about onboarding costs?"),
    ("Onboarding and training are included.", "Good, that helps with the budget."),
    (
        "If you sign before the end of {month}, I can hold the current pricing.",
        (
            "Is there a price increase planned?",
            "Are prices going up next year?",
            "Does that rate hold at renewal?",
            "What happens to the rate after year one?",
            "Okay, how long can you hold it?",
        ),
    ),
    ("Our prices go up in {month}, so this quarter is the best time.", "Understood, I'll bring that up internally."),
    ("I can offer a pilot for one team at a reduced rate.", "A pilot would make the decision easier."),
    (
        "What does the procurement process look like at {company}?",
        "Procurement needs three quotes for anything above fifty thousand.",
    ),
]
NEXT_STEPS = [
    ("I'll send the pricing sheet and two customer references today.", "Great, please copy {colleague}."),
    ("Can we book a technical deep-dive with your IT lead next {weekday}?", "{weekday} afternoon works."),
    ("I'll draft the proposal and send it by {weekday}.", "We'll review it with our VP of Sales."),
    ("Shall we schedule the onboarding kickoff for early {month}?", "Let's pencil it in."),
    ("What is the best next step from your side?", "A call with our CFO to go through the ROI."),
    ("I'll follow up on the security questionnaire.", "Thanks, that's the last blocker."),
]
GOODBYE = ("Thanks again for your time, {customer}.", "Thank you, talk soon.")
COLLEAGUE_LINES = [
    "This is {colleague} from IT, sorry I'm late. Does it support single sign-on?",
    "Can we export the transcripts if we ever leave?",
    "From the IT side, the CRM sync is the main question.",
    "I'd want to see the data retention settings before we sign.",
]
REP_FILLERS = ["That makes sense.", "Good question.", "Got it, thanks.", "Right.", "That's helpful context."]
CUSTOMER_FILLERS = ["Sure.", "Yes.", "Okay.", "Right, exactly.", "Mm-hmm.", "Go on."]


def generate_dialogue(
    rng: random.Random, *, duration_seconds: int, talk_ratio: float, customer: str, company: str
) -> list[Utterance]:
    """A sales call's turns in time order, spread over `duration_seconds`
    with the rep (speaker A) speaking `talk_ratio` of the time."""
    target = min(MAX_TURNS, max(MIN_TURNS, int(rng.gauss(25 + duration_seconds / 25, 6))))
    slots = {
        "customer": customer.split(" ")[0],
        "company": company,
        "competitor": rng.choice(COMPETITORS),
        "tool": rng.choice(TOOLS),
        "feature": rng.choice(FEATURES),
        "colleague": rng.choice(COLLEAGUE_NAMES),
        "seats": rng.choice([12, 20, 25, 40, 60, 85, 120, 200]),
        "price": rng.choice([39, 45, 49, 59, 65, 79, 89]),
        "low_price": rng.choice([25, 29, 30, 35]),
        "discount": rng.choice([10, 12, 15, 20]),
        "weekday": rng.choice(WEEKDAYS),
        "month": rng.choice(MONTHS),
    }
    objections = rng.sample(sorted(OBJECTIONS), rng.randint(1, 3))
    plan = [
        (OPENING, rng.randint(2, 3)),
        (DISCOVERY, rng.randint(3, 7)),
        (PRODUCT, rng.randint(2, 5)),
        *[(OBJECTIONS[name], rng.randint(1, len(OBJECTIONS[name]))) for name in objections],
        (PRICING, rng.randint(1, 4)),
        (NEXT_STEPS, rng.randint(2, 4)),
    ]
    exchanges: list[list[tuple[str, Line]]] = []
    colleague_joins = rng.random() < 0.2
    for lines, count in plan:
        if lines is OPENING:  # the greeting comes first, whatever else is said
            picked = [OPENING[0], *rng.sample(OPENING[1:], count - 1)]
        else:
            picked = rng.sample(lines, min(count, len(lines)))
        exchanges.extend([(REP, rep_line), (CUSTOMER, answer)] for rep_line, answer in picked)
        if lines is DISCOVERY and colleague_joins:
            exchanges.append([(COLLEAGUE, rng.choice(COLLEAGUE_LINES)), (REP, rng.choice(REP_FILLERS))])
    exchanges.append(list(zip((REP, CUSTOMER), GOODBYE, strict=True)))
    turns = [turn for exchange in _fit_turn_count(rng, exchanges, target) for turn in exchange]
    texts = [
        (speaker, (line if isinstance(line, str) else rng.choice(line)).format_map(slots)) for speaker, line in turns
    ]
    return _timed(rng, texts, duration_seconds * 1000, talk_ratio)


def _fit_turn_count(
    rng: random.Random, exchanges: list[list[tuple[str, Line]]], target: int
) -> list[list[tuple[str, Line]]]:
    """Back-channel exchanges ("Right." / "Sure.") fill a short conversation up
    to `target` turns; a long one drops whole exchanges from its middle (never
    the opening or the goodbye)."""
    while 2 * len(exchanges) > max(target, MIN_TURNS + 1):
        del exchanges[rng.randrange(2, len(exchanges) - 2)]
    while 2 * len(exchanges) < target:
        filler = [(REP, rng.choice(REP_FILLERS)), (CUSTOMER, rng.choice(CUSTOMER_FILLERS))]
        exchanges.insert(rng.randrange(2, len(exchanges) - 1), filler)
    return exchanges


def _timed(rng: random.Random, texts: list[tuple[str, str]], total_ms: int, talk_ratio: float) -> list[Utterance]:
    gaps = [rng.randint(150, 900) for _ in texts]
    words = [max(1, text.count(" ") + 1) for _, text in texts]
    rep_words = sum(n for (speaker, _), n in zip(texts, words, strict=True) if speaker == REP) or 1
    other_words = sum(words) - rep_words or 1
    speaking_ms = max(len(texts) * 400, total_ms - sum(gaps))
    rep_ms_per_word = speaking_ms * talk_ratio / rep_words
    other_ms_per_word = speaking_ms * (1 - talk_ratio) / other_words
    utterances: list[Utterance] = []
    cursor = 0
    for (speaker, text), count, gap in zip(texts, words, gaps, strict=True):
        per_word = rep_ms_per_word if speaker == REP else other_ms_per_word
        length = max(400, int(count * per_word * rng.uniform(0.85, 1.15)))
        utterances.append({"speaker": speaker, "start_ms": cursor, "end_ms": cursor + length, "text": text})
        cursor += length + gap
    end = utterances[-1]["end_ms"]
    if end > total_ms:  # the jitter overran the call: squeeze every turn in proportion
        for utterance in utterances:
            utterance["start_ms"] = utterance["start_ms"] * total_ms // end
            utterance["end_ms"] = max(utterance["start_ms"] + 1, utterance["end_ms"] * total_ms // end)
    return utterances
