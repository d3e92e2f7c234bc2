"""Plain-language sentences from the numbers: how genres rank, which blur, what clusters share.

Every number in a sentence comes from the measured tables; the wording only depends on comparisons
between those numbers (is a genre's own share larger than its strongest rival's?).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from analysis.profiles import LEAN_LIFT, ClusterProfile, GenreFit
from analysis.separability import ClusterAgreement, overall_purity
from analysis.words import UNCERTAIN

NOTABLE_TRAIT = 0.5
"""A cluster trait is worth naming when its mean is at least half a spread away from all covers'."""
TRAITS_NAMED = 2
OWN_LOOK_LIFT = 1.5
"""A genre "has a look of its own" when its covers' neighbours share its genre 1.5x as often as chance."""
STRONG_AGREEMENT = 0.5
"""NMI from which clusters are said to agree strongly with genres (0 unrelated, 1 identical)."""
_TRAIT_WORDS = {
    "brightness": ("brighter", "darker"),
    "saturation": ("more colourful", "paler (less saturated)"),
    "contrast": ("higher-contrast", "flatter (low contrast)"),
    "detail": ("busier (more edges, text or texture)", "plainer (large smooth areas)"),
    "warmth": ("warmer (reds, oranges)", "cooler (blues)"),
}


def overall_sentence(table: pd.DataFrame, k: int) -> str:
    """How much of a cover's neighbourhood shares its genre, against chance, over all labelled covers."""
    purity, chance = overall_purity(table)
    return (
        f"Across all {int(table['covers'].sum()):,} labelled covers, {purity:.0%} of a cover's {k} nearest "
        f"neighbours share its genre; chance would give {chance:.0%}."
    )


def genre_sentence(genre: str, row: pd.Series, k: int) -> str:
    """One sentence for a genre: its own share of neighbours, chance, and the genre it blurs with most."""
    own, chance = row["purity"], row["chance"]
    rival, rival_share = row["closest"], row["closest_share"]
    recall = f" A classifier recalls {row['recall']:.0%} of {genre} covers." if pd.notna(row.get("recall")) else ""
    if pd.isna(rival):
        return f"{genre}: {own:.0%} of its covers' {k} nearest neighbours are {genre}.{recall}"
    if rival_share >= own:
        return (
            f"{genre} and {rival} blur: {rival_share:.0%} of {genre} covers' neighbours are {rival}, "
            f"only {own:.0%} are {genre} (chance {chance:.0%}).{recall}"
        )
    if row["lift"] >= OWN_LOOK_LIFT:
        return (
            f"{genre} has a look of its own: {own:.0%} of {genre} covers' {k} nearest neighbours are {genre}, "
            f"{row['lift']:.1f}x chance; it blurs most with {rival} ({rival_share:.0%}).{recall}"
        )
    return (
        f"{genre} is barely apart: {own:.0%} of {genre} covers' neighbours are {genre}, only {row['lift']:.1f}x "
        f"chance, with {rival} close behind ({rival_share:.0%}).{recall}"
    )


def ranking_sentences(table: pd.DataFrame, k: int) -> list[str]:
    """One sentence per genre, in the table's order (best separated first)."""
    return [genre_sentence(str(genre), row, k) for genre, row in table.iterrows()]


def trait_phrase(profile: ClusterProfile) -> str:
    """The cluster's most distinctive measured looks, e.g. "darker, busier than most covers"."""
    scores = profile.trait_scores[profile.trait_scores.abs() >= NOTABLE_TRAIT]
    named = scores.reindex(scores.abs().sort_values(ascending=False).index)[:TRAITS_NAMED]
    words = [_TRAIT_WORDS[trait][0 if score > 0 else 1] for trait, score in named.items()]
    return f"{' and '.join(words)} than most covers" if words else "no colour or detail trait stands out"


def genre_mix_phrase(profile: ClusterProfile, overall_shares: pd.Series) -> str:
    """Its largest genre against that genre's share of the whole collection."""
    if profile.top_genre is None:
        return "no labelled covers"
    overall = float(overall_shares.get(profile.top_genre, 0.0))
    return f"{profile.top_share:.0%} {profile.top_genre} (vs {overall:.0%} of all covers)"


def cluster_sentence(profile: ClusterProfile, overall_shares: pd.Series) -> str:
    follows = {
        GenreFit.FOLLOWS: "follows genre",
        GenreFit.LEANS: f"leans to {profile.top_genre}",
        GenreFit.MIXED: "does not follow genre",
    }[profile.genre_fit(overall_shares)]
    return (
        f"Cluster {profile.cluster} ({profile.size:,} covers) {follows}: {genre_mix_phrase(profile, overall_shares)}; "
        f"{trait_phrase(profile)}."
    )


def clusters_vs_genre_sentence(
    agreement: ClusterAgreement, profiles: list[ClusterProfile], overall_shares: pd.Series
) -> str:
    """A plain statement of how far the clusters follow genre at all."""
    if not profiles:
        return "HDBSCAN found no clusters: the covers form one continuous cloud at these settings."
    fits = [profile.genre_fit(overall_shares) for profile in profiles]
    return (
        f"{fits.count(GenreFit.FOLLOWS)} of {len(profiles)} clusters have a genre majority, "
        f"{fits.count(GenreFit.LEANS)} lean to one genre (at least {LEAN_LIFT:g}x its share of all covers) and "
        f"{fits.count(GenreFit.MIXED)} mix genres. Over the clustered covers "
        f"({agreement.clustered_share:.0%} of all; the rest lie between clusters), clusters and genres agree "
        f"{'strongly' if agreement.nmi >= STRONG_AGREEMENT else 'little'}: adjusted Rand index "
        f"{agreement.ari:.2f}, NMI {agreement.nmi:.2f}, homogeneity {agreement.homogeneity:.2f}, "
        f"completeness {agreement.completeness:.2f} (1 would mean clusters are genres, 0 unrelated)."
    )


TERMS_NAMED = 3
"""Marking terms named in a genre's sentence (the report's table lists more)."""


def words_sentences(words: dict[str, Any] | None) -> list[str]:
    """One sentence per genre from analysis.words.WordFigures.to_dict(): how many of its covers carry text, the
    language most of them print, and the terms that mark it most, each with its cover counts."""
    if not words:
        return []
    sentences = []
    if words["covers_with_known_text"] < words["covers"]:
        sentences.append(
            f"Cover text is known for {words['covers_with_known_text']:,} of the {words['covers']:,} labelled covers; "
            "the figures on words are over those."
        )
    terms = pd.DataFrame(words["marking_terms"])
    spoken = pd.DataFrame(words["languages"])
    for share in words["text_shares"]:
        genre = share["genre"]
        if genre == "all":
            continue
        parts = [f"{share['share']:.0%} of {share['covers']:,} {genre} covers carry text"]
        guessed = spoken[(spoken["genre"] == genre) & spoken["share"].notna()] if len(spoken) else spoken
        named = guessed[guessed["language"] != UNCERTAIN]
        if len(named):
            top = named.iloc[0]
            unsure = int(guessed.loc[guessed["language"] == UNCERTAIN, "covers"].sum())
            parts.append(
                f"the language most printed is {language_name(top['language'])} ({top['covers']:,} of the "
                f"{int(guessed['covers'].sum()):,} covers with enough text to tell; {unsure:,} uncertain)"
            )
        mine = terms[terms["genre"] == genre].head(TERMS_NAMED) if len(terms) else terms
        if len(mine):
            named = ", ".join(f'"{t.term}" ({t.covers} covers, {t.elsewhere} elsewhere)' for t in mine.itertuples())
            parts.append(f"the words that mark it most: {named}")
        else:
            parts.append("no word marks it")
        sentences.append(f"{genre}: " + "; ".join(parts) + ".")
    return sentences


_LANGUAGES = {
    "en": "English", "de": "German", "fr": "French", "es": "Spanish", "it": "Italian", "pt": "Portuguese",
    "nl": "Dutch", "sv": "Swedish", "no": "Norwegian", "da": "Danish", "fi": "Finnish", "pl": "Polish",
    "ru": "Russian", "ja": "Japanese", "zh": "Chinese", "ko": "Korean", "la": "Latin", "cs": "Czech",
    "hu": "Hungarian", "tr": "Turkish", "el": "Greek", "ca": "Catalan", "id": "Indonesian", "tl": "Tagalog",
}


def language_name(code: str) -> str:
    """English name of an ISO 639-1 code fastText returns (the code itself for rarer ones and for labels)."""
    return _LANGUAGES.get(code, code)
