"""The Gradio app of ``xplus-eval view``: Overview, Translation (heatmaps, difference with significance,
direction pages), Multilingual and reasoning (score table, sample browser).

Every handler reads the run folders when it runs, so a run still being written shows what is on disk
now ("Reload" on the Overview, or any change of a control, picks up new files). Handlers are named API
endpoints (``api_name``), so ``gradio_client`` can drive everything the page does.
"""

from __future__ import annotations

import functools
import json
import tempfile
from pathlib import Path

import gradio as gr  # at module level: gradio resolves handlers' SelectData annotations here

from xplus_release.errors import RunFolderError
from xplus_release.evalsuite.plots import score_grid
from xplus_release.evalsuite.translation.compare import compare_generations, summary_sentence
from xplus_release.evalsuite.translation.report import METRIC_LABELS, PAPER_METRICS, write_heatmap
from xplus_release.evalsuite.translation.significance import outcome_counts
from xplus_release.evalsuite.view import figures, overview, samples
from xplus_release.evalsuite.view.reading import RunView, open_runs
from xplus_release.evalsuite.view.segments import (
    OUTPUT_FILTERS,
    SENTENCE_METRICS,
    SORTS,
    PageQuery,
    direction_rows,
    page_of,
    render_page,
    select_rows,
    write_csv,
)

SIGNIFICANCE_METRICS = ("spbleu", "chrf")  # the page tests what needs no xCOMET scores


class Explorer:
    """The handlers behind the page, over a fixed list of runs (``runs[0]`` is A, ``runs[-1]`` is B)."""

    def __init__(self, runs: list[RunView]):
        if not runs:
            raise RunFolderError("no run folder given; pass one or more folders written by xplus-eval")
        self.runs = runs
        self.labels = [run.label for run in runs]

    # --- overview -------------------------------------------------------------------------------------
    def overview(self):
        tables = [overview.runs_table(self.runs), overview.aggregates_table(self.runs)]
        tables += [overview.paper_table(self.runs, m) for m in PAPER_METRICS]
        return (*tables, overview.fidelity_markdown(self.runs))

    # --- translation ----------------------------------------------------------------------------------
    def metrics(self) -> list[str]:
        found = [m for run in self.runs for m in run.translation().get("settings", {}).get("metrics", [])]
        return list(dict.fromkeys(found)) or ["chrf"]

    def directions(self) -> list[str]:
        return sorted({d for run in self.runs for d in run.directions()})

    def languages(self) -> list[str]:
        langs = figures.grid_languages([run.translation() for run in self.runs])
        return langs or sorted({code for d in self.directions() for code in d.split("-")})

    def views(self) -> list[str]:
        """What the heatmap can show: each run, and for several runs the difference of the last and first."""
        return self.labels + ([self.difference_view()] if len(self.runs) > 1 else [])

    def difference_view(self) -> str:
        return f"difference: {self.labels[-1]} − {self.labels[0]}"

    def heatmap(self, metric: str, view: str, p_values: dict | None):
        langs = self.languages()
        if view == self.difference_view():
            return figures.heatmap_styler(self._difference_grid(langs, metric), langs, diverging=True,
                                          p_values=(p_values or {}).get(metric))
        return figures.heatmap_styler(score_grid(self._directions(view), langs, metric), langs)

    def _directions(self, label: str) -> dict:
        return self._run(label).translation().get("directions", {})

    def _difference_grid(self, langs: list[str], metric: str) -> list[list[float | None]]:
        first, last = (run.translation().get("directions", {}) for run in (self.runs[0], self.runs[-1]))
        return figures.difference_grid(first, last, langs, metric)

    def cell_direction(self, row: int, column: int) -> str | None:
        return figures.direction_of_cell(self.languages(), row, column)

    def significance(self, samples: int, correction: str = "holm", metrics: list[str] | None = None,
                     progress=gr.Progress(track_tqdm=True)) -> tuple[dict, str]:  # noqa: B008 -- gradio's idiom
        """Paired bootstrap (``compare``'s code) of the last run against the first, per direction, corrected
        across directions; its tqdm bar shows on the page."""
        if len(self.runs) < 2:
            return {}, "Significance needs two runs."
        metrics = [m for m in (metrics or self.metrics()) if m in SIGNIFICANCE_METRICS] or ["chrf"]
        tokenizer = self.runs[-1].translation().get("settings", {}).get("spbleu_tokenizer") or "flores200"
        comparison = compare_generations(self._generations(0), self._generations(-1), metrics, tokenizer,
                                         n_samples=int(samples), names=(self.labels[0], self.labels[-1]),
                                         correction=correction, folders=(self.runs[0].path, self.runs[-1].path))
        what = f"Paired bootstrap ({int(samples)} resamples, sacrebleu; {correction} correction)"
        return self._marks(comparison["rows"], metrics, what)

    def stored_significance(self) -> dict:
        """The marks of an ``xplus-eval compare`` of these two runs, if one was written in its default place."""
        stored = self.stored_comparison()
        return self._marks(stored["rows"], sorted({r["metric"] for r in stored["rows"]}), "")[0] if stored else {}

    def stored_note(self) -> str:
        """What the stored ``xplus-eval compare`` found, counted per metric after its correction."""
        stored = self.stored_comparison()
        if not stored:
            return ""
        what = f"`xplus-eval compare` ({stored.get('test', 'bs')}, {stored.get('correction', 'no')} correction)"
        return self._marks(stored["rows"], sorted({r["metric"] for r in stored["rows"]}), what)[1]

    def stored_comparison(self) -> dict:
        """compare.json of an ``xplus-eval compare`` of the first run against the last, or {}."""
        if len(self.runs) < 2:
            return {}
        path = self.runs[-1].path / f"compare-{self.runs[0].path.resolve().name}" / "compare.json"
        if not path.is_file():
            return {}
        stored = json.loads(path.read_text(encoding="utf-8"))
        if Path(stored.get("a", "")).resolve() != self.runs[0].path.resolve():
            return {}
        return stored

    @staticmethod
    def _marks(rows: list[dict], metrics: list[str], what: str) -> tuple[dict, str]:
        """Corrected p-values per metric and direction (raw ones from a compare.json written before
        corrections existed), and a note counting what improves, worsens or does not differ."""
        marks = {m: {r["direction"]: r.get("p_corrected", r["p_value"]) for r in rows if r["metric"] == m}
                 for m in metrics}
        counts = [f"{METRIC_LABELS.get(m, m)}: " + summary_sentence(outcome_counts(
            [r for r in rows if r["metric"] == m and "outcome" in r])) for m in metrics]
        return marks, (f"{what} on {len(rows)} direction/metric pairs. " + "; ".join(counts)
                       + f". Starred: corrected p < {figures.SIGNIFICANT}.")

    def _generations(self, position: int) -> dict[str, dict[int, dict]]:
        run = self.runs[position]
        return {d: run.segments(d) for d in run.directions()}

    def figure_files(self, metric: str, view: str, p_values: dict | None) -> list[str]:
        folder = Path(tempfile.mkdtemp(prefix="xplus-view-"))
        langs = self.languages()
        if view == self.difference_view():
            paths = figures.difference_files(folder, self._difference_grid(langs, metric), langs, metric,
                                             (p_values or {}).get(metric, {}), view)
        else:  # the report's heatmap of one run
            paths = [write_heatmap(folder, self._directions(view), langs, metric, fmt)
                     for fmt in ("png", "svg")]
        return [str(p) for p in paths]

    # --- direction page -------------------------------------------------------------------------------
    def query(self, direction, sort, metric, run_label, descending, outputs, search, page, page_size) -> PageQuery:
        run = self.labels.index(run_label) if run_label in self.labels else 0
        return PageQuery(direction=direction or "", sort=sort, metric=metric, run=run, descending=bool(descending),
                         outputs=outputs, search=search or "", page=int(page or 1), page_size=int(page_size or 25))

    def direction_page(self, direction, sort, metric, run_label, descending, outputs, search, page,
                       page_size) -> str:
        query = self.query(direction, sort, metric, run_label, descending, outputs, search, page, page_size)
        if not query.direction:
            return "<p>Pick a direction (or click a cell of the heatmap).</p>"
        rows = select_rows(direction_rows(self.runs, query.direction), query)
        shown, page, pages = page_of(rows, query.page, query.page_size)
        return render_page(shown, self.labels, query.direction, len(rows), page, pages)

    def direction_csv(self, direction, sort, metric, run_label, descending, outputs, search, page,
                      page_size) -> str | None:
        query = self.query(direction, sort, metric, run_label, descending, outputs, search, page, page_size)
        if not query.direction:
            return None
        rows = select_rows(direction_rows(self.runs, query.direction), query)
        folder = Path(tempfile.mkdtemp(prefix="xplus-view-"))
        return str(write_csv(rows, self.labels, folder / f"{query.direction}.csv"))

    # --- multilingual and reasoning -------------------------------------------------------------------
    def sample_tasks(self, run_label: str) -> list[str]:
        return samples.tasks(self._run(run_label))

    def sample_page(self, run_label, task, language, correctness, search, page) -> str:
        return samples.render(self._run(run_label), task or "", language or "", correctness, search or "",
                              int(page or 1))

    def _run(self, label: str) -> RunView:
        return self.runs[self.labels.index(label)] if label in self.labels else self.runs[0]


TABS = ("Overview", "Translation", "Multilingual and reasoning")


def build_view(paths: list[str | Path], title: str = "xplus-eval view", selected: str = "Overview",
               direction: str | None = None):
    """The app over ``paths`` (run folders), opening on the tab ``selected`` (and ``direction``'s page).

    Raises: RunFolderError for a path that is not a run folder."""
    explorer = Explorer(open_runs(paths))
    builders = (_overview_tab, functools.partial(_translation_tab, direction=direction), _samples_tab)
    with gr.Blocks(title=title) as blocks:
        gr.Markdown(f"# {title}\n" + " · ".join(f"**{label}**: `{run.path}`"
                                              for label, run in zip(explorer.labels, explorer.runs)))
        with gr.Tabs(selected=selected):
            for name, builder in zip(TABS, builders):
                with gr.Tab(name, id=name):
                    builder(explorer, blocks)
    return blocks


def _overview_tab(explorer: Explorer, blocks) -> None:
    reload = gr.Button("Reload from disk", size="sm")
    outputs = [gr.Dataframe(label="Runs", interactive=False),
               gr.Dataframe(label="Aggregates (paper definition: x-L into L, L-x out of L)", interactive=False)]
    outputs += [gr.Dataframe(label=f"Beside the paper: {m} (Table 7; runs on fewer languages average fewer "
                                   "directions)", interactive=False) for m in PAPER_METRICS]
    gr.Markdown("### Fidelity")
    outputs.append(gr.Markdown())
    reload.click(explorer.overview, outputs=outputs, api_name="overview")
    blocks.load(explorer.overview, outputs=outputs, api_visibility="private")


def _translation_tab(explorer: Explorer, blocks, direction: str | None = None) -> None:
    p_values = gr.State(explorer.stored_significance())  # from `xplus-eval compare`, when it was run
    with gr.Row():
        metric = gr.Dropdown(explorer.metrics(), value=explorer.metrics()[0], label="metric")
        view = gr.Dropdown(explorer.views(), value=explorer.views()[-1], label="heatmap of")
    heat = gr.Dataframe(label="Rows: source, columns: target. Click a cell to open that direction.",
                        interactive=False, max_height=700)
    with gr.Row():
        samples_box = gr.Number(1000, precision=0, minimum=1, label="bootstrap resamples", scale=1)
        correction = gr.Dropdown(["holm", "bh", "none"], value="holm", label="correction across directions", scale=1)
        bootstrap = gr.Button("Paired bootstrap: mark significant differences", scale=2,
                              interactive=len(explorer.runs) > 1)
        figure_button = gr.Button("Figures (PNG, SVG)", scale=1)
    note = gr.Markdown(explorer.stored_note())
    figure_files = gr.File(label="figures", file_count="multiple", height=90)
    gr.on([blocks.load, metric.change, view.change], explorer.heatmap, [metric, view, p_values], heat,
          api_name="heatmap")
    bootstrap.click(explorer.significance, [samples_box, correction], [p_values, note], api_name="compare").then(
        explorer.heatmap, [metric, view, p_values], heat, api_visibility="private")
    figure_button.click(explorer.figure_files, [metric, view, p_values], figure_files, api_name="figures")
    _direction_page(explorer, blocks, heat, direction)


def _direction_page(explorer: Explorer, blocks, heat, initial: str | None) -> None:
    gr.Markdown("### Direction")
    directions = explorer.directions()
    initial = initial if initial in directions else (directions[0] if directions else None)
    with gr.Row():
        direction = gr.Dropdown(directions, value=initial, label="direction", allow_custom_value=True)
        sort = gr.Radio(list(SORTS), value="sentence", label="sort by")
        sort_metric = gr.Dropdown(list(SENTENCE_METRICS), value="chrf", label="sentence metric")
        sort_run = gr.Dropdown(explorer.labels, value=explorer.labels[0], label="score of run")
        descending = gr.Checkbox(False, label="descending")
    with gr.Row():
        outputs = gr.Radio(list(OUTPUT_FILTERS), value="all", label="outputs")
        search = gr.Textbox(label="search source, reference, outputs")
        page = gr.Number(1, precision=0, minimum=1, label="page")
        page_size = gr.Number(25, precision=0, minimum=1, maximum=500, label="per page")
    page_html = gr.HTML()
    csv_button = gr.Button("Direction CSV (all matching segments)", size="sm")
    csv_file = gr.File(label="CSV", height=90)
    controls = [direction, sort, sort_metric, sort_run, descending, outputs, search, page, page_size]
    gr.on([blocks.load] + [c.change for c in controls if c is not search] + [search.submit],
          explorer.direction_page, controls, page_html, api_name="direction_page")
    csv_button.click(explorer.direction_csv, controls, csv_file, api_name="direction_csv")

    def open_cell(evt: gr.SelectData):
        row, column = evt.index
        found = explorer.cell_direction(row, column)
        return gr.update(value=found) if found else gr.update()

    heat.select(open_cell, None, direction, api_visibility="private")


def _samples_tab(explorer: Explorer, blocks) -> None:
    table = gr.Dataframe(label="Scores per task and language (reasoning: per OpenCompass dataset)",
                         interactive=False)
    gr.Markdown("### Samples (lm-eval and OpenCompass logs)")
    with gr.Row():
        run = gr.Dropdown(explorer.labels, value=explorer.labels[0], label="run")
        task = gr.Dropdown([], label="task", allow_custom_value=True)
        language = gr.Textbox(label="language or dataset (empty: all)")
        correctness = gr.Radio(list(samples.CORRECTNESS), value="all", label="answers")
        search = gr.Textbox(label="search")
        page = gr.Number(1, precision=0, minimum=1, label="page")
    shown = gr.HTML()
    blocks.load(lambda: overview.task_scores_table(explorer.runs), outputs=table, api_name="task_scores")

    def task_choices(label: str):
        choices = explorer.sample_tasks(label)
        return gr.update(choices=choices, value=choices[0] if choices else None)

    gr.on([blocks.load, run.change], task_choices, run, task, api_visibility="private")
    controls = [run, task, language, correctness, search, page]
    gr.on([task.change, language.submit, correctness.change, search.submit, page.change],
          explorer.sample_page, controls, shown, api_name="samples")
