"""The interactive report: one self-contained HTML file with Bokeh plots, tables and sentences.

Bokeh's JavaScript is inlined (``INLINE`` resources) and thumbnails are data URIs, so the file opens from
a USB stick or an e-mail attachment with no network. Only Bokeh's core bundle is used (no widgets): text and
tables are plain HTML around the plots, which keeps the file small and readable without JavaScript.
"""

from __future__ import annotations

import dataclasses
import html
from pathlib import Path

import numpy as np
import pandas as pd
from bokeh.embed import file_html
from bokeh.layouts import row
from bokeh.models import (
    BooleanFilter,
    CDSView,
    ColorBar,
    ColumnDataSource,
    CustomJS,
    HoverTool,
    LinearColorMapper,
    Model,
)
from bokeh.palettes import Blues256, Category10, Category20, Greys3, turbo
from bokeh.plotting import figure
from bokeh.resources import INLINE

from analysis.covermap import NOISE
from analysis.editions import MAX_GROUPS, EditionsSection
from analysis.narrative import language_name
from analysis.profiles import ClusterProfile
from analysis.separability import ClusterAgreement
from analysis.words import (
    MIN_LANGUAGE_LETTERS,
    MIN_LANGUAGE_SCORE,
    MIN_TERM_COVERS,
    TOO_SHORT,
    UNCERTAIN,
    WordFigures,
)
from index.atomic import atomic_path

UNLABELLED = "(no genre)"
NOISE_LABEL = "noise"
PLOT_SIZE = 600
POINT_SIZE = 6
NOISE_ALPHA = 0.12
"""Noise is drawn faintly: it is most of the cloud, and the clusters are what the eye should find."""
CLUSTER_ALPHA = 0.85
GENRE_ALPHA = 0.75
CLUSTERED_LABEL = "in a cluster (colour = cluster)"
DRAW_ORDER_SEED = 0

WHITE_TEXT_FROM = 0.6
"""Heatmap cells darker than 60% of the top share get white numbers, the rest black, for contrast."""

GENRE_MAP = "genre-map"
CLUSTER_MAP = "cluster-map"
HEATMAP = "confusability"
POINTS = "points"
"""Model names the page template (and the browser test) find the plots and their data by."""

_TOOLTIP = """
<div class="tip">
  <div>@thumb{safe}</div>
  <div><b>@genre</b> · cluster @cluster_label</div>
  <div class="tip-path">@path</div>
</div>
"""


@dataclasses.dataclass
class ReportData:
    """Everything the page shows, as plain tables and strings."""

    title: str
    subtitle: str
    points: pd.DataFrame  # x, y, genre (str or <NA>), cluster (int, NOISE), path, thumbnail (data URI or "")
    table: pd.DataFrame  # separability table, best separated first
    confusion: pd.DataFrame  # genre x neighbour-genre shares
    agreement: ClusterAgreement
    profiles: list[ClusterProfile]
    thumbnails: dict[int, str]  # row -> data URI at gallery size, for cluster examples
    overall_shares: pd.Series  # share of each genre among all labelled covers
    overall: str
    ranking: list[str]
    clusters_statement: str
    cluster_sentences: list[str]
    method: list[str]  # how it was measured, one line each
    neighbours: int
    recall_model: str | None
    hover_note: str
    words: WordFigures | None = None  # what the words printed on the covers say; None when no text is known
    words_sentences: list[str] = dataclasses.field(default_factory=list)
    editions: EditionsSection | None = None  # edition groups; None when they were not looked for


def genre_colours(genres: list[str]) -> dict[str, str]:
    """A fixed colour per genre (sorted order), so every report of an index colours genres alike."""
    palette = Category10[10] if len(genres) <= 10 else turbo(len(genres))
    colours = {genre: palette[i] for i, genre in enumerate(sorted(genres))}
    colours[UNLABELLED] = Greys3[1]
    return colours


def cluster_colours(n_clusters: int) -> list[str]:
    """Distinct colours for clusters; Category20's paired shades are split so neighbours differ."""
    if n_clusters <= 20:
        palette = Category20[20]
        return list(palette[0::2] + palette[1::2])[:n_clusters]
    return list(turbo(n_clusters))


def write_report(path: str | Path, data: ReportData) -> Path:
    """Write the HTML report to ``path`` atomically and return the path."""
    path = Path(path)
    roots = _plots(data)
    page = file_html(
        roots,
        INLINE,
        title=data.title,
        template=_TEMPLATE,
        template_variables={"body": _Body(data)},
    )
    with atomic_path(path) as temporary:
        temporary.write_text(page, encoding="utf-8")
    return path


def _plots(data: ReportData) -> list[Model]:
    # Rows in a seeded random order: points are drawn in row order, and index order groups covers by
    # genre, which would paint the last genre over all others.
    points = data.points.sample(frac=1.0, random_state=DRAW_ORDER_SEED)
    genres = points["genre"].fillna(UNLABELLED).astype(str)
    colours = genre_colours(sorted(set(genres) - {UNLABELLED}))
    clusters = points["cluster"].to_numpy()
    n_clusters = int(clusters.max()) + 1 if len(clusters) else 0
    palette = cluster_colours(n_clusters)
    source = ColumnDataSource(
        {
            "x": points["x"].to_numpy(),
            "y": points["y"].to_numpy(),
            "genre": genres.to_list(),
            "genre_colour": [colours[genre] for genre in genres],
            "cluster_label": [NOISE_LABEL if c == NOISE else str(c) for c in clusters],
            "cluster_kind": [NOISE_LABEL if c == NOISE else CLUSTERED_LABEL for c in clusters],
            "cluster_colour": [Greys3[1] if c == NOISE else palette[c] for c in clusters],
            "cluster_alpha": np.where(clusters == NOISE, NOISE_ALPHA, CLUSTER_ALPHA),
            "path": points["path"].astype(str).to_list(),
            "thumb": [
                f'<img src="{uri}" alt="cover" width="80">' if uri else "<i>no thumbnail (sampled out)</i>"
                for uri in points["thumbnail"]
            ],
        },
        name=POINTS,
    )
    by_genre = _scatter_figure(GENRE_MAP, "Covers by genre (click a genre to hide it)")
    by_cluster = _scatter_figure(CLUSTER_MAP, "Covers by HDBSCAN cluster (noise faint)")
    by_cluster.x_range, by_cluster.y_range = by_genre.x_range, by_genre.y_range
    ordered = sorted(set(genres), key=lambda g: (g == UNLABELLED, g))
    _points_layer(by_genre, source, "genre", {genre: colours[genre] for genre in ordered},
                  color="genre_colour", alpha=GENRE_ALPHA)
    _points_layer(by_cluster, source, "cluster_kind",
                  {NOISE_LABEL: Greys3[1], CLUSTERED_LABEL: palette[0] if palette else Greys3[1]},
                  color="cluster_colour", alpha="cluster_alpha")
    _label_clusters(by_cluster, points, n_clusters)
    return [row(by_genre, by_cluster, name="maps"), _heatmap(data.confusion, data.neighbours)]


def _points_layer(plot: figure, source: ColumnDataSource, column: str, legend: dict[str, str], **style: object) -> None:
    """All points in one layer (so a hover shows one tooltip), with a legend entry per value of ``column``.

    The legend entries belong to "handle" layers that draw nothing, whose only job is to be clicked: a script
    then keeps the drawn (and hoverable) points to the values whose handles are visible.
    """
    shown = BooleanFilter(booleans=[True] * len(source.data[column]))
    drawn = plot.scatter("x", "y", source=source, view=CDSView(filter=shown), size=POINT_SIZE,
                         name=f"{plot.name}-points", **style)
    handles = [  # one undrawable point each (NaN), so the legend still draws a swatch for them
        plot.scatter(x=[np.nan], y=[np.nan], size=POINT_SIZE, color=colour, legend_label=value)
        for value, colour in legend.items()
    ]
    sync = CustomJS(
        args={"filter": shown, "handles": handles, "keys": list(legend), "source": source, "column": column},
        code="""
        const visible = new Set(keys.filter((key, i) => handles[i].visible));
        filter.booleans = Array.from(source.data[column], (value) => visible.has(value));
        """,
    )
    for handle in handles:
        handle.js_on_change("visible", sync)
    plot.legend.click_policy = "hide"
    plot.legend.location = "top_left"
    plot.legend.background_fill_alpha = 0.7
    plot.add_tools(HoverTool(renderers=[drawn], tooltips=_TOOLTIP, limit=1))


def _scatter_figure(name: str, title: str) -> figure:
    plot = figure(
        name=name,
        title=title,
        width=PLOT_SIZE,
        height=PLOT_SIZE,
        tools="pan,wheel_zoom,box_zoom,reset,save",
        active_scroll="wheel_zoom",
        match_aspect=True,
    )
    plot.axis.visible = False
    plot.grid.visible = False
    return plot


def _label_clusters(plot: figure, points: pd.DataFrame, n_clusters: int) -> None:
    """Cluster ids at each cluster's median position, to find a cluster's examples further down the page."""
    clustered = points[points["cluster"] != NOISE]
    centres = clustered.groupby("cluster")[["x", "y"]].median().reindex(range(n_clusters))
    labels = ColumnDataSource({"x": centres["x"], "y": centres["y"], "text": [str(c) for c in centres.index]})
    plot.text(
        "x", "y", text="text", source=labels, text_font_size="13px", text_font_style="bold",
        text_align="center", text_baseline="middle", text_color="#222222",
        background_fill_color="white", background_fill_alpha=0.7,
    )


def _heatmap(confusion: pd.DataFrame, k: int) -> figure:
    genres = [str(g) for g in confusion.index]
    cells = confusion.stack().rename("share").reset_index()
    cells.columns = ["genre", "neighbour", "share"]
    cells["text"] = [f"{share:.0%}" for share in cells["share"]]
    top = float(cells["share"].max()) if len(cells) else 1.0
    cells["text_colour"] = ["white" if share > top * WHITE_TEXT_FROM else "black" for share in cells["share"]]
    mapper = LinearColorMapper(palette=list(reversed(Blues256)), low=0.0, high=top)
    plot = figure(
        name=HEATMAP,
        title=f"Share of a genre's {k} nearest neighbours in each genre (row = the cover's genre)",
        x_range=genres,
        y_range=list(reversed(genres)),
        width=max(420, 90 * len(genres) + 180),
        height=max(320, 70 * len(genres) + 120),
        tools="save",
        x_axis_location="above",
    )
    source = ColumnDataSource(cells.to_dict("list"))
    plot.rect("neighbour", "genre", 1, 1, source=source, fill_color={"field": "share", "transform": mapper},
              line_color="white")
    plot.text("neighbour", "genre", text="text", source=source, text_align="center", text_baseline="middle",
              text_color="text_colour", text_font_size="13px")
    plot.add_tools(HoverTool(tooltips=[("cover genre", "@genre"), ("neighbour genre", "@neighbour"),
                                       ("share", "@share{0.0%}")]))
    plot.add_layout(ColorBar(color_mapper=mapper, width=12, title="share"), "right")
    plot.xaxis.axis_label = "neighbour genre"
    plot.yaxis.axis_label = "cover genre"
    plot.grid.visible = False
    plot.axis.major_tick_line_color = None
    plot.axis.axis_line_color = None
    return plot


class _Body:
    """HTML fragments for the template, escaped here so the template stays dumb."""

    def __init__(self, data: ReportData) -> None:
        self.data = data

    def text(self, value: object) -> str:
        return html.escape(str(value))

    def table(self) -> str:
        table = self.data.table
        has_recall = "recall" in table.columns
        head = ["rank", "genre", "covers", f"{self.data.neighbours}-NN purity", "chance", "lift", "silhouette",
                "blurs most with"]
        if has_recall:
            head.append(f"recall ({self.data.recall_model})")
        rows = []
        for genre, entry in table.iterrows():
            cells = [
                str(entry["rank"]), genre, f"{entry['covers']:,}", f"{entry['purity']:.2f}", f"{entry['chance']:.2f}",
                f"{entry['lift']:.2f}x", f"{entry['silhouette']:+.3f}",
                f"{entry['closest']} ({entry['closest_share']:.0%})" if pd.notna(entry["closest"]) else "",
            ]
            if has_recall:
                cells.append("" if pd.isna(entry["recall"]) else f"{entry['recall']:.2f}")
            rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
        header = "".join(f"<th>{html.escape(h)}</th>" for h in head)
        return f'<table class="data ranking"><thead><tr>{header}</tr></thead><tbody>{"".join(rows)}</tbody></table>'

    def contingency(self) -> str:
        counts = self.data.agreement.contingency
        order = [c for c in counts.index if c != NOISE] + ([NOISE] if NOISE in counts.index else [])
        counts = counts.reindex(order)
        genre_cells = "".join(f"<th>{html.escape(str(g))}</th>" for g in counts.columns)
        header = f"<th>cluster</th>{genre_cells}<th>total</th>"
        rows = []
        for cluster, entry in counts.iterrows():
            total = int(entry.sum())
            cells = []
            for value in entry:
                share = value / total if total else 0.0
                cells.append(f'<td style="background: rgba(33, 113, 181, {share:.2f})">{int(value):,}</td>')
            name = NOISE_LABEL if cluster == NOISE else str(cluster)
            rows.append(f"<tr><td>{name}</td>{''.join(cells)}<td>{total:,}</td></tr>")
        return f'<table class="data"><thead><tr>{header}</tr></thead><tbody>{"".join(rows)}</tbody></table>'

    def clusters(self) -> str:
        blocks = []
        genres = self.data.points["genre"]
        paths = self.data.points["path"]
        for profile, sentence in zip(self.data.profiles, self.data.cluster_sentences):
            pictures = []
            for row_number in profile.examples:
                uri = self.data.thumbnails.get(row_number)
                genre = genres.iloc[row_number]
                label = UNLABELLED if pd.isna(genre) else str(genre)
                caption = html.escape(f"{label}: {paths.iloc[row_number]}")
                if uri:
                    pictures.append(
                        f'<figure><img src="{uri}" alt="{caption}" title="{caption}">'
                        f"<figcaption>{html.escape(label)}</figcaption></figure>"
                    )
            tag = profile.genre_fit(self.data.overall_shares).value
            blocks.append(
                f'<div class="cluster {tag}"><p>{html.escape(sentence)}</p>'
                f'<div class="gallery">{"".join(pictures)}</div></div>'
            )
        return "".join(blocks)

    def words_tables(self) -> str:
        """Per genre: covers with text, the languages they print, and the terms that mark the genre."""
        words = self.data.words
        if words is None:
            return ""
        languages = words.languages
        head = ["genre", "covers", "with text", "languages printed (covers)", "language uncertain",
                f"{TOO_SHORT} to tell", "words and phrases that mark the genre: covers of the genre · of all other "
                "genres (z)"]
        rows = []
        for share in words.shares.itertuples():
            if share.genre == "all":
                continue
            mine = languages[languages["genre"] == share.genre]
            spoken = mine[~mine["language"].isin([TOO_SHORT, UNCERTAIN])]
            counted = mine.groupby("language")["covers"].sum()
            spoken_cell = ", ".join(
                f"{html.escape(language_name(str(item.language)))} {item.covers:,}" for item in spoken.itertuples()
            )
            terms = words.terms[words.terms["genre"] == share.genre]
            term_cell = " ".join(
                f'<span class="term" title="z {item.z:.1f}, log-odds {item.log_odds:+.2f}">'
                f"<b>{html.escape(str(item.term))}</b> {item.covers:,} · {item.elsewhere:,} "
                f'<span class="z">({item.z:.1f})</span></span>'
                for item in terms.itertuples()
            ) or "<i>none printed on enough covers</i>"
            cells = [html.escape(str(share.genre)), f"{share.covers:,}",
                     f"{share.covers_with_text:,} ({share.share:.0%})", spoken_cell or "<i>none</i>",
                     f"{int(counted.get(UNCERTAIN, 0)):,}", f"{int(counted.get(TOO_SHORT, 0)):,}", term_cell]
            rows.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
        header = "".join(f"<th>{html.escape(h)}</th>" for h in head)
        return f'<table class="data words"><thead><tr>{header}</tr></thead><tbody>{"".join(rows)}</tbody></table>'

    def editions_table(self) -> str:
        """The largest edition groups: size, why they were joined, score and their covers side by side."""
        editions = self.data.editions
        if editions is None or editions.largest.empty:
            return ""
        rows = []
        for group in editions.largest.itertuples():
            pictures = "".join(
                f'<img src="{editions.thumbnails[path]}" alt="{html.escape(path)}" title="{html.escape(path)}">'
                for path in group.paths
                if path in editions.thumbnails
            )
            cells = [str(group.group), str(group.size), html.escape(group.reason), f"{group.score:.2f}",
                     f'<div class="gallery editions">{pictures}</div>']
            rows.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
        header = "".join(f"<th>{h}</th>" for h in ["group", "covers", "joined because", "score", "the covers"])
        return f'<table class="data editions"><thead><tr>{header}</tr></thead><tbody>{"".join(rows)}</tbody></table>'

    def editions_note(self) -> str:
        """How the groups were found, and what the words would add when the index holds no cover text."""
        editions = self.data.editions
        if editions is None:
            return ""
        words = (
            "look, perceptual hashes and the printed words" if editions.with_text else
            "look and perceptual hashes only (the index holds no cover text; build-index --read-text adds the words)"
        )
        return (
            f"Covers judged to be one release (re-scans, crops, reissues with a banner or sticker, recoloured "
            f"prints), from {words}; only each cover's nearest covers are compared, never all pairs. The "
            f"{MAX_GROUPS} largest groups are shown; python cli.py editions --index DIR lists them all, and groups "
            "dismissed in the app are left out."
        )

    def words_note(self) -> str:
        """How the words figures were made, or how to get them when no cover text is known."""
        words = self.data.words
        if words is None:
            return (
                "No cover text is known for these covers yet. Run analyze again with --read-text to read the "
                "text printed on each cover (OCR, about a quarter of a second a cover, once: it is cached)."
            )
        return (
            "The text printed on each cover, read by OCR (RapidOCR). A word or two-word phrase marks a genre when "
            "it is printed on more of the genre's covers than the other genres' covers lead one to expect: ranked "
            "by the z-score of its log-odds ratio, genre against all other covers, with the whole collection as "
            "an informative Dirichlet prior (Monroe, Colaresi &amp; Quinn 2008), so a word seen on a handful of "
            f"covers cannot top the list by chance; z above 2 is rarely chance. Only terms on at least "
            f"{MIN_TERM_COVERS} covers count, once per cover. Many marking words are artists' names: they tell "
            "who is in the collection as much as what the genre prints. Languages: fastText's language "
            f"identifier (lid.176, offline) on covers with at least {MIN_LANGUAGE_LETTERS} letters of text; a "
            f"guess below {MIN_LANGUAGE_SCORE:.0%} probability counts as uncertain (cover text is mostly names and "
            "words run together, which the identifier often cannot place)."
        )


_TEMPLATE = """
{% block postamble %}
<style>
  body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; margin: 0 auto;
         padding: 16px 28px 40px; max-width: 1320px; line-height: 1.45; height: auto; }
  h1 { font-size: 26px; margin: 8px 0 2px; }
  h2 { font-size: 19px; margin: 28px 0 6px; border-bottom: 1px solid #ddd; padding-bottom: 3px; }
  .subtitle { color: #666; margin: 0 0 12px; }
  .summary li { margin: 3px 0; }
  .note { color: #555; font-size: 14px; }
  table.data { border-collapse: collapse; font-size: 14px; margin: 6px 0; }
  table.data th, table.data td { border: 1px solid #ddd; padding: 3px 9px; text-align: right; }
  table.data th { background: #f4f4f4; }
  table.ranking td:nth-child(2), table.ranking th:nth-child(2) { text-align: left; }
  .cluster { margin: 14px 0; padding: 6px 10px; border-left: 4px solid #9ecae1; }
  .cluster.leans { border-left-color: #c6dbef; }
  .cluster.mixed { border-left-color: #bbb; }
  .cluster p { margin: 2px 0 6px; }
  .gallery { display: flex; flex-wrap: wrap; gap: 6px; }
  .gallery figure { margin: 0; text-align: center; font-size: 11px; color: #555; }
  .gallery img { width: 100px; height: 100px; object-fit: cover; display: block; }
  .tip { max-width: 260px; font-size: 12px; }
  .tip-path { color: #666; word-break: break-all; }
  .method li { font-size: 13px; color: #444; }
  table.words td, table.words th { text-align: left; vertical-align: top; }
  table.words td:nth-child(2), table.words td:nth-child(3), table.words td:nth-child(5),
  table.words td:nth-child(6) { text-align: right; }
  table.words .term { display: inline-block; margin: 1px 8px 1px 0; white-space: nowrap; }
  table.words .z { color: #777; font-size: 12px; }
  table.editions td:nth-child(3), table.editions td:nth-child(5) { text-align: left; }
  .gallery.editions img { width: 64px; height: 64px; }
</style>
{% endblock %}
{% block contents %}
<h1>{{ body.text(body.data.title) }}</h1>
<p class="subtitle">{{ body.text(body.data.subtitle) }}</p>
<h2>Summary</h2>
<ul class="summary">
  <li>{{ body.text(body.data.overall) }}</li>
  {% for sentence in body.data.ranking %}<li>{{ body.text(sentence) }}</li>{% endfor %}
  <li>{{ body.text(body.data.clusters_statement) }}</li>
</ul>
<h2>Map of the covers</h2>
<p class="note">Each point is a cover, placed by UMAP so that look-alike covers sit together. Hover a point to see
the cover; click a legend entry to hide it; scroll to zoom; both maps pan and zoom together.
{{ body.text(body.data.hover_note) }}</p>
{{ embed(roots.maps) }}
<h2>Separability ranking</h2>
<p class="note">Best separated first, ranked by lift: how many times more often than chance a cover's nearest
neighbours (cosine, in the full embedding) share its genre. Silhouette is measured in the full embedding too
(1: tight and apart, 0: on the border, below 0: closer to another genre).</p>
{{ body.table() }}
<h2>Which genres blur into which</h2>
{{ embed(roots.confusability) }}
<h2>What the clusters capture</h2>
<p>{{ body.text(body.data.clusters_statement) }}</p>
<p class="note">Clusters are numbered by size; the numbers are also drawn on the cluster map. Each row shows the
covers HDBSCAN is surest of. Trait words compare the cluster's average brightness, saturation, contrast, detail and
warmth with all covers'.</p>
{{ body.clusters() }}
<h3>Clusters by genre (cover counts)</h3>
{{ body.contingency() }}
<h2>What the words on the covers say</h2>
<p class="note">{{ body.words_note() }}</p>
{% if body.data.words_sentences %}<ul class="summary">{% for sentence in body.data.words_sentences %}
  <li>{{ body.text(sentence) }}</li>{% endfor %}</ul>{% endif %}
{{ body.words_tables() }}
{% if body.data.editions %}<h2>Editions and duplicates</h2>
<p>{{ body.text(body.data.editions.sentence()) }}</p>
<p class="note">{{ body.editions_note() }}</p>
{{ body.editions_table() }}{% endif %}
<h2>How this was measured</h2>
<ul class="method">{% for line in body.data.method %}<li>{{ body.text(line) }}</li>{% endfor %}</ul>
{% endblock %}
"""
