"""Glyph rendering throughput on one core: ``python benchmarks/bench_render.py``.

Renders the first N GB2312 level-1 characters with a few installed writer fonts at 64, 128 and
224 px (after one warm-up pass so font loading and cmap parsing are not counted) and prints
images per second per core (CPU time, robust to other load) and wall-clock.
"""

from __future__ import annotations

import argparse
import time

from restoreae.data.charsets import GB2312_LEVEL1
from restoreae.data.fonts import discover_fonts, render_glyph


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=500, help="characters per font")
    parser.add_argument(
        "--writers",
        default="arphic-kaitim-gb,lxgw-wenkai,noto-sans-cjk-sc,noto-serif-cjk-sc",
        help="comma-separated writer ids (those installed are used; else the first four writers)",
    )
    parser.add_argument("--sizes", default="64,128,224")
    args = parser.parse_args()

    all_faces = discover_fonts()
    wanted = args.writers.split(",")
    faces = [f for f in all_faces if f.writer_id in wanted] or all_faces[:4]
    chars = GB2312_LEVEL1[: args.chars]
    print(f"fonts: {', '.join(f.writer_id for f in faces)}; {len(chars)} chars each")
    for size in (int(s) for s in args.sizes.split(",")):
        for face in faces:  # warm-up: font objects and cmaps are cached
            render_glyph(face, chars[0], size)
        n = 0
        start, cpu_start = time.perf_counter(), time.process_time()
        for face in faces:
            for ch in chars:
                n += render_glyph(face, ch, size) is not None
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        calls = len(faces) * len(chars)
        print(
            f"{size:4d} px: {calls / cpu:7.0f} glyphs/s per core (CPU time), "
            f"{calls / wall:7.0f} wall-clock; {n} with ink of {calls} calls"
        )


if __name__ == "__main__":
    main()
