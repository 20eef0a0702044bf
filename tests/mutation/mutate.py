"""Mutation testing of the core modules with cosmic-ray (`make mutate`; docs/mutation.md).

Each module of ``targets.toml`` is mutated in a scratch copy of the checkout (the checkout itself is never
edited, so an interrupted run leaves nothing mutated behind) and each mutant runs only that module's tests.
The outcome of each module (machine, date, commit, killed/survived/timeout and every survivor's diff) goes to
``results.json``; ``report.md`` is rendered from it and from ``explained.toml``, where a person says of each
survivor why it is equivalent or which test kills it now. A module not run keeps its last result (or is
listed as not run).

    python tests/mutation/mutate.py                       # every module (hours on 2 cores)
    python tests/mutation/mutate.py --module bench_powerprop/masks.py --module bench_powerprop/powerprop.py
    python tests/mutation/mutate.py --report-only         # re-render report.md (after editing explained.toml)
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
TARGETS, RESULTS, EXPLAINED, REPORT = HERE / "targets.toml", HERE / "results.json", HERE / "explained.toml", HERE / "report.md"
GOAL = 0.90


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    return f"{platform.node()} ({cpu}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start)"


def scratch_copy(destination: Path) -> None:
    """The checkout's tracked and unignored files, copied (the mutants are written into this copy only), and
    ``MUTATION_SOURCE``: the commit and machine they are measured at."""
    (destination / "MUTATION_SOURCE").write_text(json.dumps({"commit": commit_label(), "machine": machine()}))
    for name in git("ls-files", "--cached", "--others", "--exclude-standard", "-z").split("\0"):
        source = REPO / name
        if name and source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)


def config_text(module: str, target: dict, settings: dict, timeout: float, server: Path) -> str:
    command = [sys.executable, "tests/mutation/warm.py", "run", str(server), "--",
               "-x", "-q", "-p", "no:cacheprovider", *target["tests"]]
    if target.get("select"):
        command += ["-k", target["select"]]
    exclude = ", ".join(json.dumps(pattern) for pattern in settings.get("exclude_operators", []))
    return (f"[cosmic-ray]\nmodule-path = {json.dumps(module)}\ntimeout = {timeout}\nexcluded-modules = []\n"
            f"test-command = {json.dumps(shlex.join(command))}\n\n[cosmic-ray.distributor]\nname = \"local\"\n\n"
            f"[cosmic-ray.filters.operators-filter]\nexclude-operators = [{exclude}]\n")


def run_module(module: str, target: dict, settings: dict, scratch: Path, timeout: float, minutes: float | None) -> dict:
    slug = module.replace("/", "_")
    config, session = scratch / f"mutation_{slug}.toml", scratch / f"mutation_{slug}.sqlite"
    server = scratch / "warm.sock"
    config.write_text(config_text(module, target, settings, timeout, server))
    env = {**os.environ, "PYTHONPATH": str(scratch)}  # the scratch copy's package, not an installed one

    def cosmic(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([*args], cwd=scratch, env=env, capture_output=True, text=True, check=check)

    server.unlink(missing_ok=True)
    warm = subprocess.Popen([sys.executable, "tests/mutation/warm.py", "serve", str(server), str(int(timeout))],
                            cwd=scratch, env=env, stdout=subprocess.PIPE, text=True)
    try:
        if warm.stdout.readline().strip() != "ready":
            raise SystemExit(f"{module}: the pre-warmed pytest did not start")
        return mutants(module, target, cosmic, config, session, minutes)
    finally:
        warm.terminate()
        warm.wait()


def mutants(module: str, target: dict, cosmic, config: Path, session: Path, minutes: float | None) -> dict:
    cosmic("cosmic-ray", "init", str(config), str(session))
    cosmic("cr-filter-operators", str(session), str(config))
    baseline = cosmic("cosmic-ray", "baseline", str(config), check=False)
    if baseline.returncode != 0:
        raise SystemExit(f"{module}: its tests fail on the unmutated code; fix them first:\n{baseline.stdout[-3000:]}")
    print(f"==> {module}: mutants running ({target['tests']})", flush=True)
    root = session.parent / module  # the module's unmutated files, put back if the budget stops a mutant midway
    pristine = {path: path.read_bytes() for path in ([root] if root.is_file() else sorted(root.rglob("*.py")))}
    execute = subprocess.Popen(["cosmic-ray", "exec", str(config), str(session)], cwd=session.parent,
                               env={**os.environ, "PYTHONPATH": str(session.parent)}, start_new_session=True)
    try:
        execute.wait(timeout=minutes * 60 if minutes else None)
    except subprocess.TimeoutExpired:  # the budget is spent: what ran is reported, the rest counted as not run
        os.killpg(execute.pid, signal.SIGTERM)
        execute.wait()
        for path, text in pristine.items():  # cosmic-ray stopped mid-mutant leaves that mutant in the file
            path.write_bytes(text)
    return collect(module, target, cosmic, session)


def collect(module: str, target: dict, cosmic, session: Path) -> dict:
    """The outcome of every mutant of ``session`` (mutants not run yet are counted as ``not_run``)."""
    source = json.loads((session.parent / "MUTATION_SOURCE").read_text())
    counts = {"killed": 0, "survived": 0, "timeout": 0, "incompetent": 0, "skipped": 0, "not_run": 0}
    survivors = []
    for line in cosmic("cosmic-ray", "dump", str(session)).stdout.splitlines():
        item, result = json.loads(line)
        if result is None:
            counts["not_run"] += 1
            continue
        if result["worker_outcome"] == "skipped":
            counts["skipped"] += 1
            continue
        mutation = item["mutations"][0]
        outcome = result.get("test_outcome")
        if outcome == "survived":
            counts["survived"] += 1
            survivors.append({"key": survivor_key(module, result.get("diff") or ""), "operator": mutation["operator_name"],
                              "line": mutation["start_pos"][0], "function": mutation.get("definition_name"),
                              "diff": result.get("diff") or ""})
        elif outcome == "killed" and (result.get("output") or "").startswith("timeout"):
            counts["timeout"] += 1
        elif outcome == "incompetent" or result["worker_outcome"] != "normal":
            counts["incompetent"] += 1
        else:
            counts["killed"] += 1
    return {"module": module, "tests": target["tests"], "select": target.get("select", ""), "machine": source["machine"],
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"), "commit": source["commit"],
            "counts": counts, "survivors": sorted(survivors, key=lambda s: (s["line"], s["operator"]))}


def survivor_key(module: str, diff: str) -> str:
    """A survivor's name that outlives line renumbering: the module, the line removed and the line added."""
    lines = [line for line in diff.splitlines() if line[1:].strip()]
    removed = next((line[1:].strip() for line in lines if line.startswith("-") and not line.startswith("---")), "")
    added = next((line[1:].strip() for line in lines if line.startswith("+") and not line.startswith("+++")), "")
    return f"{module}: {removed} => {added}"


def commit_label() -> str:
    return git("rev-parse", "--short", "HEAD") + (" (with uncommitted changes)" if git("status", "--porcelain") else "")


def render(targets: dict, results: dict, explained: dict) -> str:
    lines = ["# Mutation testing report", "",
             "Written by `make mutate` (`tests/mutation/mutate.py`, cosmic-ray); how to run it and when: "
             "docs/mutation.md. Survivors are explained in `tests/mutation/explained.toml`. Killed % counts timeouts "
             "as killed and leaves equivalent mutants out of the denominator; \"+ tests since\" also counts the survivors a "
             "test added after the run kills (each planted and seen to fail; the next run counts them itself). The goal is "
             f"≥ {GOAL:.0%} per module, every survivor explained.", "",
             "| module | machine | date | commit | mutants | killed | timeout | survived | equivalent | killed % "
             "| + tests since | goal |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for module in targets["modules"]:
        result = results.get(module)
        if result is None:
            lines.append(f"| `{module}` | not run | | | | | | | | | | |")
            continue
        c = result["counts"]
        equivalent = sum(1 for s in result["survivors"] if explained.get(s["key"], "").startswith("equivalent"))
        killed_since = sum(1 for s in result["survivors"] if explained.get(s["key"], "").startswith("killed now by"))
        unexplained = sum(1 for s in result["survivors"] if s["key"] not in explained)
        total = c["killed"] + c["timeout"] + c["survived"] + c["incompetent"]
        pending = f" (+{c['not_run']} not run: budget spent)" if c.get("not_run") else ""
        denominator = total - equivalent
        share = (c["killed"] + c["timeout"] + c["incompetent"]) / denominator if denominator else 1.0
        share_since = share + killed_since / denominator if denominator else 1.0
        short = [f"{unexplained} survivors not explained"] * bool(unexplained) + [f"{c['not_run']} not run"] * bool(c.get("not_run"))
        verdict = ("met" if share_since >= GOAL and not short else "not met") + (f" ({'; '.join(short)})" if short else "")
        lines.append(f"| `{module}` | {result['machine']} | {result['date']} | {result['commit']} | {total}{pending} | "
                     f"{c['killed'] + c['incompetent']} | {c['timeout']} | {c['survived']} | {equivalent} | {share:.1%} | "
                     f"{share_since:.1%} | {verdict} |")
    for module in targets["modules"]:
        result = results.get(module)
        if not result or not result["survivors"]:
            continue
        lines += ["", f"## Survivors in `{module}`", "", f"Tests: `{' '.join(result['tests'])}`"
                  + (f" `-k {result['select']!r}`" if result["select"] else ""), ""]
        for survivor in result["survivors"]:
            why = explained.get(survivor["key"], "**not explained yet**")
            lines.append(f"- line {survivor['line']} (`{survivor['function']}`, {survivor['operator']}): "
                         f"`{survivor['key'].split(': ', 1)[1]}` — {why}")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", action="append", help="a module of targets.toml (repeatable; default: all)")
    parser.add_argument("--timeout", type=float, help="seconds per mutant (default: targets.toml's)")
    parser.add_argument("--minutes", type=float, help="budget per module: mutants not run by then are reported as not run")
    parser.add_argument("--collect", type=Path, metavar="SCRATCH",
                        help="read the outcome of an interrupted run from its kept scratch copy (--keep) instead of running")
    parser.add_argument("--report-only", action="store_true", help="only re-render report.md from results.json")
    parser.add_argument("--keep", action="store_true", help="keep the scratch copy (its cosmic-ray sessions)")
    args = parser.parse_args(argv)
    targets = tomllib.loads(TARGETS.read_text())
    unknown = sorted(set(args.module or ()) - set(targets["modules"]))
    if unknown:
        parser.error(f"--module {unknown[0]}: not in {TARGETS.relative_to(REPO)} (known: {', '.join(targets['modules'])})")
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    explained = tomllib.loads(EXPLAINED.read_text()) if EXPLAINED.exists() else {}
    if args.collect:
        for module in args.module or ():
            session = args.collect / f"mutation_{module.replace('/', '_')}.sqlite"

            def cosmic(*command: str) -> subprocess.CompletedProcess:
                return subprocess.run(command, cwd=args.collect, capture_output=True, text=True, check=True)

            results[module] = collect(module, targets["modules"][module], cosmic, session)
        RESULTS.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    elif not args.report_only:
        if shutil.which("cosmic-ray") is None:
            parser.error("cosmic-ray is not installed: pip install -e '.[mutation]' (make mutate does it)")
        scratch = Path(tempfile.mkdtemp(prefix="bench_powerprop_mutation_"))
        try:
            scratch_copy(scratch)
            for module in args.module or list(targets["modules"]):
                results[module] = run_module(module, targets["modules"][module], targets, scratch,
                                             args.timeout or targets.get("timeout", 240), args.minutes)
                # merged into the file as it is now: runs of other modules may have finished meanwhile
                results = {**(json.loads(RESULTS.read_text()) if RESULTS.exists() else {}), module: results[module]}
                RESULTS.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
                print(f"==> {module}: {results[module]['counts']}", flush=True)
        finally:
            if args.keep:
                print(f"scratch copy kept: {scratch}")
            else:
                shutil.rmtree(scratch, ignore_errors=True)
    REPORT.write_text(render(targets, results, explained))
    print(f"report: {REPORT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
