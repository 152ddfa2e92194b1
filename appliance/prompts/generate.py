"""Build the built-in prompt set: espeak-ng speaks the catalogue, we resample to 8 kHz WAV.

Run as `python tools/gen_prompts.py DIR` (what `make prompts` does) or
`python -m appliance.prompts.generate DIR`. Idempotent: DIR/.stamp holds a hash of the
catalogue, this code and the espeak-ng version; when it matches, nothing is spoken again.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import catalogue, convert, wavfile
from .catalogue import LANGUAGES, BuiltinPrompt
from .wavfile import RATE, PromptError

STAMP = ".stamp"
# espeak-ng voices and speeds (words per minute): a little slower than its default 175,
# because telephone audio is narrow and callers hear a prompt once.
VOICES = {"ru": ("ru", 140), "en": ("en-us", 150)}
LEAD_IN_S = 0.15  # silence first: the first syllable survives a player that starts late
TAIL_S = 0.25  # and a short pause after, so prompts played one after another do not run on
QUIET = 0.01  # below this share of the peak, espeak-ng's own leading/trailing pause is cut
PEAK = 0.7  # every prompt peaks at about -3 dBFS, so they sound equally loud
SPEAK_TIMEOUT_S = 60


def source_hash(espeak_version: str) -> str:
    """A hash of everything the generated files depend on."""
    h = hashlib.sha256(espeak_version.encode())
    for module in (catalogue, convert, wavfile, sys.modules[__name__]):
        h.update(Path(str(module.__file__)).read_bytes())
    return h.hexdigest()


def espeak_version() -> str:
    """The installed espeak-ng's version line; PromptError if it is missing."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise PromptError("espeak-ng is not installed (Debian package espeak-ng; `make deps`)")
    done = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False,
                          timeout=SPEAK_TIMEOUT_S)
    return done.stdout.split("Data at")[0].strip()


def speak(text: str, language: str) -> bytes:
    """espeak-ng's WAV of a text (its own rate, 22.05 kHz)."""
    voice, speed = VOICES[language]
    # The text goes through stdin, so a text starting with '-' is never taken for an option.
    done = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-b", "1", "--stdout"],
                          input=text.encode("utf-8"), capture_output=True, check=False,
                          timeout=SPEAK_TIMEOUT_S)
    if done.returncode != 0 or not done.stdout:
        raise PromptError(f"espeak-ng failed for {text!r}: {done.stderr.decode(errors='replace')}")
    return done.stdout


def tone(freq: float, seconds: float) -> convert.Samples:
    """A sine at 8 kHz with 5 ms raised-cosine edges (no clicks)."""
    n = int(RATE * seconds)
    t = np.arange(n) / RATE
    edge = int(RATE * 0.005)
    env = np.ones(n)
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(edge) / edge)
    env[:edge], env[n - edge:] = ramp, ramp[::-1]
    return 0.5 * env * np.sin(2 * math.pi * freq * t)


def render(prompt: BuiltinPrompt, language: str) -> bytes:
    """The engine's WAV of one built-in prompt in one language."""
    if prompt.tone is not None:
        return convert.engine_wav(tone(*prompt.tone))
    samples = convert.decode_to_rate(speak(prompt.text(language), language), "espeak.wav")
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    if peak == 0:
        raise PromptError(f"espeak-ng said nothing for {prompt.key} ({language})")
    loud = np.flatnonzero(np.abs(samples) > QUIET * peak)
    samples = samples[loud[0]:loud[-1] + 1] * (PEAK / peak)
    return convert.engine_wav(np.concatenate(
        [np.zeros(int(RATE * LEAD_IN_S)), samples, np.zeros(int(RATE * TAIL_S))]))


def build(out_dir: Path, *, force: bool = False) -> bool:
    """Write every built-in prompt under out_dir/<language>/; False if already up to date."""
    stamp = out_dir / STAMP
    digest = source_hash(espeak_version())
    wanted = [out_dir / lang / f"{p.key}.wav" for lang in LANGUAGES for p in catalogue.CATALOGUE]
    if (not force and stamp.is_file() and stamp.read_text().strip() == digest
            and all(path.is_file() for path in wanted)):
        stamp.touch()  # make compares times: say "checked" without rewriting anything
        return False
    stamp.unlink(missing_ok=True)  # a run cut short must not look finished
    for lang in LANGUAGES:
        keys = set()
        for prompt in catalogue.CATALOGUE:
            wavfile.write_atomic(out_dir / lang / f"{prompt.key}.wav", render(prompt, lang))
            keys.add(prompt.key)
        for old in (out_dir / lang).glob("*.wav"):  # keys taken out of the catalogue
            if old.stem not in keys:
                old.unlink()
    wavfile.write_atomic(stamp, (digest + "\n").encode())
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: build the prompt set into a directory."""
    parser = argparse.ArgumentParser(description="Generate the built-in voice prompts.")
    parser.add_argument("out_dir", type=Path, help="e.g. share/prompts")
    parser.add_argument("--force", action="store_true", help="regenerate even if up to date")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        built = build(args.out_dir, force=args.force)
    except (PromptError, OSError, subprocess.SubprocessError) as exc:
        print(f"prompts: {exc}", file=sys.stderr)
        return 1
    count = len(catalogue.CATALOGUE) * len(LANGUAGES)
    if built:
        print(f"prompts: {count} files in {args.out_dir} "
              f"({time.monotonic() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
