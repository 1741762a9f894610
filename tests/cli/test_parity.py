"""Issue 15 from the terminal: `shorten`, then P2; `act JOB custom-zoom --prompt …` and its range."""

from __future__ import annotations

from bot.errors import ExitCode
from tests.cli.conftest import Cli, records


def test_shorten_prints_the_scores_and_the_prompts_and_p2_imagines_one(run: Cli) -> None:
    code, out, err = run("shorten", "a very beautiful lighthouse on a rocky cliff at dusk --ar 3:2")
    assert code == ExitCode.OK, err
    lines = out.splitlines()
    made = lines[0].split()[1]
    assert lines[0] == f"job {made} (shorten): succeeded on local"
    assert lines[1].startswith("Most significant: lighthouse")
    prompts = [line.split(": ", 1)[1] for line in lines if line[:2] in ("P1", "P2", "P3", "P4", "P5")]
    assert 2 <= len(prompts) <= 5 and all(p.endswith("--ar 3:2") for p in prompts)

    code, out, err = run("act", made, "P2", "--json")
    assert code == ExitCode.OK, err
    [grid] = records(out)
    assert (grid["kind"], grid["parent"], grid["prompt"]) == ("imagine", made, prompts[1])


def test_custom_zoom_takes_its_prompt_and_refuses_a_zoom_out_of_range(run: Cli) -> None:
    code, out, err = run("imagine", "a fox --ar 3:2", "--json")
    [grid] = records(out)
    code, out, err = run("act", grid["id"], "U1", "--json")
    [upscale] = records(out)
    assert "custom-zoom" in upscale["actions"] and "make-square" in upscale["actions"]

    code, out, err = run("act", upscale["id"], "custom-zoom", "--prompt", "a fox in a field --zoom 3")
    assert code != ExitCode.OK and "out of range" in err and out == ""
    code, out, _ = run("jobs", "--json")
    assert len(records(out)) == 2  # nothing was made

    code, out, err = run(
        "act", upscale["id"], "custom-zoom", "--prompt", "a fox in a field --zoom 1.5", "--json"
    )
    assert code == ExitCode.OK, err
    [zoomed] = records(out)
    assert (zoomed["kind"], zoomed["state"], zoomed["prompt"]) == (
        "custom-zoom",
        "succeeded",
        "a fox in a field",
    )
