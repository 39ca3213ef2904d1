"""Replies split to fit Discord's message and embed limits (bot/discord/render.py); nothing is lost."""

from __future__ import annotations

import pytest

from bot.discord.render import (
    CONTENT_MAX,
    DESCRIPTION_MAX,
    EMBED_TOTAL_MAX,
    EMBEDS_PER_MESSAGE,
    FIELD_NAME_MAX,
    FIELD_VALUE_MAX,
    FIELDS_MAX,
    TITLE_MAX,
    Field,
    Reply,
    content_messages,
    embed_size,
    render,
    split_text,
)


def _check_limits(messages: list[list[dict]]) -> None:
    for embeds in messages:
        assert 1 <= len(embeds) <= EMBEDS_PER_MESSAGE
        assert sum(embed_size(e) for e in embeds) <= EMBED_TOTAL_MAX
        for embed in embeds:
            assert len(embed["title"]) <= TITLE_MAX
            assert len(embed.get("description", "")) <= DESCRIPTION_MAX
            assert len(embed.get("fields", [])) <= FIELDS_MAX
            for field in embed.get("fields", []):
                assert 0 < len(field["name"]) <= FIELD_NAME_MAX
                assert 0 < len(field["value"]) <= FIELD_VALUE_MAX


def test_short_text_is_one_piece_and_empty_text_is_one_empty_piece():
    assert split_text("hello", 10) == ["hello"]
    assert split_text("", 10) == [""]


def test_split_prefers_paragraphs_then_lines_then_words_and_loses_no_word():
    text = "\n\n".join(f"Paragraph {i}: " + "word " * 50 for i in range(30))
    pieces = split_text(text, 700)
    assert len(pieces) > 1 and all(len(piece) <= 700 for piece in pieces)
    assert all(piece.startswith("Paragraph") for piece in pieces)  # cut at paragraph breaks
    assert " ".join(" ".join(pieces).split()) == " ".join(text.split())


def test_a_word_longer_than_the_limit_is_cut():
    pieces = split_text("x" * 4500, 2000)
    assert [len(piece) for piece in pieces] == [2000, 2000, 500]


def test_plain_answers_fit_in_2000_character_messages():
    answer = ("Your BTC position is up 4.2% today. " * 200).strip()
    messages = content_messages(answer)
    assert len(messages) == 4 and all(len(m) <= CONTENT_MAX for m in messages)
    assert " ".join(messages).split() == answer.split()


def test_a_long_description_becomes_several_embeds_and_messages_within_every_limit():
    text = "\n".join(f"Line {i}: " + "detail " * 20 for i in range(600))  # ~90,000 characters
    messages = render(Reply(title="T" * 300, description=text, footer="footer"))
    _check_limits(messages)
    assert len(messages) > 1
    embeds = [e for m in messages for e in m]
    assert embeds[0]["title"].endswith("…") and len(embeds[0]["title"]) == TITLE_MAX
    assert embeds[1]["title"].endswith("(cont.)") or embeds[1]["title"].endswith("…")
    assert embeds[-1]["footer"] == {"text": "footer"}
    joined = " ".join(e.get("description", "") for e in embeds)
    assert joined.split() == text.split()


def test_many_and_long_fields_are_spread_over_embeds():
    fields = [Field(f"Portfolio {i}", "position line\n" * 120) for i in range(40)]  # 1,680 chars each
    messages = render(Reply(title="Your portfolios", fields=fields))
    _check_limits(messages)
    names = [f["name"] for m in messages for e in m for f in e.get("fields", [])]
    assert "Portfolio 0" in names and "Portfolio 0 (cont.)" in names and "Portfolio 39" in names
    values = "".join(f["value"] for m in messages for e in m for f in e.get("fields", []))
    assert values.count("position line") == 40 * 120


@pytest.mark.parametrize("count", [1, 25, 26, 100])
def test_field_count_limit(count):
    messages = render(Reply(title="x", fields=[Field(str(i), "v") for i in range(count)]))
    _check_limits(messages)
    assert sum(len(e.get("fields", [])) for m in messages for e in m) == count
