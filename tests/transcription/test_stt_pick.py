"""How `make bench-stt` picks the default from its measurements, and scores stored transcripts
again (no model, no audio)."""

from __future__ import annotations

from typing import Any

from bench.stt_eval import pick, summarise
from transcription.whisper import DecodeOptions


def _result(wer: float, rtf: float, cpu: float, silence: int = 0, beam: int = 5) -> dict[str, Any]:
    return {"model": "m", "settings": f"beam {beam}", "options": {"beam_size": beam}, "wer": wer, "rtf": rtf,
            "cpu_per_audio_s": cpu, "words_on_silence": silence}


def test_the_best_wer_among_the_fast_enough_options() -> None:
    slow_but_good, fast, faster_worse = _result(0.05, 0.5, 0.5), _result(0.08, 0.12, 0.2), _result(0.2, 0.05, 0.06)
    best, verdict = pick([slow_but_good, fast, faster_worse])
    assert best is fast and verdict.startswith("meets")
    # CPU time stands in for wall time that others' load inflated.
    best, _ = pick([_result(0.07, 0.3, 0.14), fast])
    assert best is not None and best["wer"] == 0.07


def test_ties_go_to_fewer_words_invented_on_silence_then_speed() -> None:
    hallucinating, quiet, quieter_slower = _result(0.1, 0.1, 0.1, 2), _result(0.1, 0.12, 0.12), _result(0.1, 0.14, 0.14)
    assert pick([hallucinating, quieter_slower, quiet])[0] is quiet


def test_missing_the_wer_target_or_the_budget_is_said() -> None:
    best, verdict = pick([_result(0.18, 0.1, 0.1), _result(0.14, 0.5, 0.46)])
    assert best is not None and best["wer"] == 0.18 and verdict.startswith("misses")
    # Nothing within the budget (a busy machine): the options within 10% of the fastest.
    best, verdict = pick([_result(0.2, 0.18, 0.17), _result(0.19, 0.19, 0.18), _result(0.1, 0.5, 0.5)])
    assert best is not None and best["wer"] == 0.19 and verdict.startswith("misses") and "no option reached" in verdict
    assert pick([]) == (None, "nothing measured")


def test_summarise_scores_the_stored_transcripts() -> None:
    rows = [
        {"source": "ffmpeg", "reference": "Meet me at half past three.", "text": "Meet me at half past 3.",
         "audio_s": 2.0, "wall_s": 0.2, "cpu_s": 0.3},
        {"source": "chromium", "reference": "Call Priya at seven.", "text": "Call Maria at 7.",
         "audio_s": 2.0, "wall_s": 0.2, "cpu_s": 0.3},
        {"source": "silence", "reference": "", "text": "You", "audio_s": 4.0, "wall_s": 0.4, "cpu_s": 0.6},
    ]
    result = summarise("bundled:tiny.en", {"beam_size": 1, "vad_filter": False}, rows)
    assert result["settings"] == DecodeOptions(beam_size=1, vad_filter=False).label()
    assert (result["wer_espeak"], result["wer_browser"], result["wer"]) == (0.0, 0.25, 0.125)
    assert result["words_on_silence"] == 1 and result["wer_padded"] is None
    assert (result["rtf"], result["cpu_per_audio_s"]) == (0.1, 0.15)
