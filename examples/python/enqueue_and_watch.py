#!/usr/bin/env python3
"""Enqueue a small batch from two users and watch it run, through the libgen
Python binding (python/libgen).

    PYTHONPATH=python examples/python/enqueue_and_watch.py --model tests/fixtures/tiny-sd15

It opens a context on the devices (default "cpu:0,cpu:1"; "auto" uses every
GPU), enqueues `--runs` images for alice and for bob into a queue file
(--db, default a temp file), starts one worker per device, and prints events
until every item is finished: which device took which item, progress, where
the images were written. Ctrl-C stops the workers (running items go back to
the queue). With --no-start it only enqueues and prints the queue status.
"""
import argparse
import os
import sys
import tempfile

import libgen


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="diffusers folder or .safetensors file")
    ap.add_argument("--db", help="queue file (default: a new temp file)")
    ap.add_argument("--devices", default="cpu:0,cpu:1", help='generation_devices ("auto", ...)')
    ap.add_argument("--runs", type=int, default=2, help="images per user")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--size", type=int, default=64, help="width and height in pixels")
    ap.add_argument("--output-dir", default="outputs")
    ap.add_argument("--no-start", action="store_true", help="enqueue only")
    args = ap.parse_args()
    db = args.db or os.path.join(tempfile.mkdtemp(prefix="libgen-example-"), "queue.db")

    try:
        with libgen.Context(generation_devices=args.devices, db_path=db, log_level="warn",
                            output_dir=args.output_dir) as ctx:
            print(f"libgen {libgen.version()} ({libgen.library_path})")
            for d in ctx.devices:
                print(f"  device {d.index}: {d.id} {d.label}")
            batches = []
            for user, prompt in (("alice", "a lighthouse at dusk"), ("bob", "a bowl of ramen")):
                job = libgen.Job(model=args.model, prompt=prompt, steps=args.steps,
                                 width=args.size, height=args.size, seed=1234)
                r = ctx.queue.enqueue(job, runs=args.runs, user=user)
                batches.append(r)
                print(f"{user}: enqueued items {r.item_ids} (batch {r.batch_id[:8]})")
            print("queue:", ctx.queue.counts())
            if args.no_start:
                return 0
            ids = [i for r in batches for i in r.item_ids]
            try:
                ctx.start()
            except libgen.Unsupported as e:
                print(f"workers cannot start in this build: {e.message}", file=sys.stderr)
                return 1
            try:
                watch(ctx, ids)
            except KeyboardInterrupt:
                print("stopping: running items go back to the queue")
                ctx.stop("requeue")
                return 130
            ctx.stop("drain")
            print("queue:", ctx.queue.counts())
    except libgen.LibgenError as e:
        print(f"error ({e.status_name}): {e.message}", file=sys.stderr)
        return 1
    return 0


def watch(ctx, ids):
    """Print events until every item of `ids` is finished."""
    left = set(ids)
    finished = {libgen.Status.COMPLETED, libgen.Status.FAILED, libgen.Status.CANCELED}
    for ev in ctx.events():
        if ev.type == libgen.EventType.ITEM_STATUS:
            print(f"item {ev.item_id} ({ev.user_id}): {ev.new_status.label}"
                  + (f" on {ev.device_label}" if ev.device_label else "")
                  + (f": {ev.message}" if ev.message else ""))
            if ev.new_status in finished:
                left.discard(ev.item_id)
        elif ev.type == libgen.EventType.PROGRESS and ev.stage == libgen.Stage.DENOISE:
            print(f"  item {ev.item_id} on {ev.device_label}: step {ev.step}/{ev.total_steps}")
        elif ev.type == libgen.EventType.IMAGE_READY:
            print(f"  item {ev.item_id}: wrote {ev.image_path}")
        elif ev.type == libgen.EventType.WORKER_ERROR:
            print(f"worker error on {ev.device_label}: {ev.message}", file=sys.stderr)
        if not left:
            return


if __name__ == "__main__":
    sys.exit(main())
