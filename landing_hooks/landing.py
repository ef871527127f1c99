"""MkDocs hooks for the PoZapisi landing site (listed under `hooks:` in mkdocs.yml).

What they do, in build order:

* read and check `policy/versions.yml`, the one list of privacy-policy versions that
  `pozapisi db upgrade` reads too (see policy/README.md);
* resolve the `${NAME}` placeholders: defaults from mkdocs.yml `extra.placeholders`, overridden by
  environment variables of the same name; an empty value or an undeclared name fails the build;
* publish the current policy version at `/{lang}/privacy/` beside `/{lang}/privacy/<version>/`;
* give every page its language, the UI words of that language, hreflang alternates and its
  canonical URL, and feed the sitemap;
* print the price cards (`[[plans]]` in a home page) from `policy/plans.yml`, the one list of
  plans and prices that `pozapisi db upgrade` writes into the database too (`app.db.plans`), so
  the price a visitor reads is the price charged;
* after the build, fail if any `${` survived into the site.

Any failure raises `PluginError`, which stops `mkdocs build` with the message and exit status 1.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import yaml
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

LANGS = ("en", "ru", "kk")
# The chooser at `/` holds all three languages; Kazakh, the state language, is its document
# language and each language's part carries its own `lang` attribute.
ROOT_LANG = "kk"
# Section 4 of the policy: the purposes a version may list.
KNOWN_PURPOSES = frozenset({"booking", "notifications", "billing", "support", "security"})
MATERIAL_NOTICE_DAYS = 30  # clause 11.1
# Kazakhstan has one time zone, UTC+5, since 2024-03-01; "today" for the policy is a Kazakh day.
KAZAKHSTAN_TZ = dt.timezone(dt.timedelta(hours=5))
VERSION_KEYS = frozenset(
    {"version", "published_at", "effective_at", "material", "purposes", "summary", "files"}
)
DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
PLACEHOLDER_RE = re.compile(r"\$\{([^{}\s]*)\}")
PLACEHOLDER_NAME_RE = re.compile(r"[A-Z][A-Z0-9_]*")
POLICY_PAGE_RE = re.compile(r"(?P<lang>[a-z]{2})/privacy/(?P<name>[^/]+)\.md")
TEXT_SUFFIXES = frozenset({".html", ".xml", ".txt", ".css", ".js", ".svg", ".json"})


class LandingError(PluginError):
    """A problem in the landing sources; stops the build with a clear message."""


@dataclass(frozen=True)
class PolicyVersion:
    version: str
    published_at: dt.date
    effective_at: dt.date
    material: bool
    purposes: tuple[str, ...]
    summary: dict[str, str]
    files: dict[str, str]

    def status(self, current: PolicyVersion) -> str:
        if self.version == current.version:
            return "current"
        return "upcoming" if self.effective_at > current.effective_at else "archived"


@dataclass
class State:
    site_url: str
    docs_dir: Path
    versions: list[PolicyVersion]
    current: PolicyVersion
    placeholders: dict[str, str]
    ui: dict[str, dict[str, Any]]
    files: Files | None = None
    pages: list[File] = field(default_factory=list)
    plans: dict[str, Any] = field(default_factory=dict)


_state: State | None = None


def _get_state() -> State:
    if _state is None:  # pragma: no cover - MkDocs always calls on_config first
        raise LandingError("landing hooks: on_config did not run")
    return _state


# --- policy/versions.yml ----------------------------------------------------------------------


def build_day() -> dt.date:
    """The build's day in Kazakhstan; SOURCE_DATE_EPOCH (reproducible builds) fixes it."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    moment = dt.datetime.fromtimestamp(int(epoch), dt.UTC) if epoch else dt.datetime.now(dt.UTC)
    return moment.astimezone(KAZAKHSTAN_TZ).date()


def _date(value: Any, where: str) -> dt.date:
    if not isinstance(value, str) or not DATE_RE.fullmatch(value):
        raise LandingError(f'{where} must be a quoted date "YYYY-MM-DD", got {value!r}')
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise LandingError(f"{where}: {exc}") from None


def _per_language(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or set(value) != set(LANGS):
        got = sorted(value) if isinstance(value, dict) else value
        raise LandingError(f"{where} must map exactly {', '.join(LANGS)}, got {got!r}")
    for lang, text in value.items():
        if not isinstance(text, str) or not text.strip():
            raise LandingError(f"{where}.{lang} must be a non-empty string")
    return dict(value)


def load_versions(
    path: Path, root: Path, docs_dir: Path, today: dt.date
) -> tuple[list[PolicyVersion], PolicyVersion]:
    """Read and check the versions file; return (versions newest first, current version)."""
    where = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
    if not path.is_file():
        raise LandingError(f"{where}: the privacy-policy versions file is missing")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or set(data) != {"current", "versions"}:
        raise LandingError(f"{where} must have exactly the keys 'current' and 'versions'")
    entries = data["versions"]
    if not isinstance(entries, list) or not entries:
        raise LandingError(f"{where}: 'versions' must be a non-empty list")
    docs_rel = docs_dir.relative_to(root).as_posix()

    versions: dict[str, PolicyVersion] = {}
    for index, entry in enumerate(entries):
        at = f"{where}: versions[{index}]"
        if not isinstance(entry, dict) or set(entry) != VERSION_KEYS:
            keys = sorted(entry) if isinstance(entry, dict) else entry
            raise LandingError(
                f"{at} must have exactly the keys {sorted(VERSION_KEYS)}, got {keys}"
            )
        version = entry["version"]
        at = f"{where}: version {version!r}"
        _date(version, f"{at}: version")
        published_at = _date(entry["published_at"], f"{at}: published_at")
        effective_at = _date(entry["effective_at"], f"{at}: effective_at")
        if version != entry["effective_at"]:
            raise LandingError(f"{at}: the version id must equal effective_at")
        if version in versions:
            raise LandingError(f"{at} is listed twice")
        if published_at > effective_at:
            raise LandingError(f"{at}: published_at is after effective_at")
        material = entry["material"]
        if not isinstance(material, bool):
            raise LandingError(f"{at}: material must be true or false")
        notice = dt.timedelta(days=MATERIAL_NOTICE_DAYS)
        if material and effective_at < published_at + notice:
            raise LandingError(
                f"{at} is a material change: it may take effect no earlier than "
                f"{MATERIAL_NOTICE_DAYS} days after publication "
                f"({(published_at + notice).isoformat()}), not {effective_at.isoformat()}"
            )
        purposes = entry["purposes"]
        if (
            not isinstance(purposes, list)
            or not purposes
            or len(set(purposes)) != len(purposes)
            or not set(purposes) <= KNOWN_PURPOSES
        ):
            raise LandingError(
                f"{at}: purposes must be a non-empty list of distinct values from "
                f"{sorted(KNOWN_PURPOSES)}, got {purposes!r}"
            )
        summary = _per_language(entry["summary"], f"{at}: summary")
        files = _per_language(entry["files"], f"{at}: files")
        for lang, file_path in files.items():
            expected = f"{docs_rel}/{lang}/privacy/{version}.md"
            if file_path != expected:
                raise LandingError(f"{at}: files.{lang} must be {expected} (the URL depends on it)")
            if not (root / file_path).is_file():
                raise LandingError(f"{at}: files.{lang}: {file_path} does not exist")
        versions[version] = PolicyVersion(
            version=version,
            published_at=published_at,
            effective_at=effective_at,
            material=material,
            purposes=tuple(purposes),
            summary=summary,
            files=files,
        )

    current_id = data["current"]
    current = versions.get(current_id) if isinstance(current_id, str) else None
    if current is None:
        raise LandingError(f"{where}: current {current_id!r} is not one of the listed versions")
    if current.effective_at > today:
        raise LandingError(
            f"{where}: current {current.version} is not in force yet on {today.isoformat()}"
        )
    for later in versions.values():
        if current.effective_at < later.effective_at <= today:
            raise LandingError(
                f"{where}: version {later.version} is in force since {later.version}; "
                f"set current: {later.version!r}"
            )
    ordered = sorted(versions.values(), key=lambda v: v.effective_at, reverse=True)
    return ordered, current


# --- policy/plans.yml -----------------------------------------------------------------------

PLANS_MARKER = "[[plans]]"
FEATURED_PLAN = "pro"  # the card the page sets apart


def load_plans(path: Path) -> dict[str, Any]:
    """Read the plans file and check what the price cards need from it."""
    if not path.is_file():
        raise LandingError(f"{path.name}: the plans file is missing")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    yearly = data.get("yearly_months") if isinstance(data, dict) else None
    if not isinstance(yearly, int) or not isinstance(data.get("plans"), list):
        raise LandingError(f"{path.name}: needs yearly_months and a list of plans")
    words = data.get("words") or {}
    for key in ("per_month", "per_year", "trial"):
        _per_language(words.get(key), f"{path.name}: words.{key}")
    for plan in data["plans"]:
        where = f"{path.name}: plan {plan.get('code')!r}"
        month, year = plan.get("price_month_tiyn"), plan.get("price_year_tiyn")
        if not isinstance(month, int) or year != month * yearly:
            raise LandingError(f"{where}: price_year_tiyn must be price_month_tiyn × {yearly}")
        for key in ("name", "tagline"):
            _per_language(plan.get(key), f"{where}: {key}")
        points = plan.get("points")
        if not isinstance(points, dict) or set(points) != set(LANGS):
            raise LandingError(f"{where}: points must list each of {', '.join(LANGS)}")
    return data


def tenge(tiyn: int) -> str:
    """A price as the landing writes it in every language: 4&nbsp;990&nbsp;₸."""
    whole, cents = divmod(tiyn, 100)
    text = f"{whole:,}".replace(",", "&nbsp;") + (f",{cents:02d}" if cents else "")
    return f"{text}&nbsp;₸"


def plans_markdown(plans: dict[str, Any], lang: str) -> str:
    """The price cards of one language, as the home page's Markdown (md_in_html)."""
    words = plans["words"]
    cards = []
    for plan in plans["plans"]:
        month = plan["price_month_tiyn"]
        featured = " plan-featured" if plan["code"] == FEATURED_PLAN else ""
        price = f'<p class="price"><strong>{tenge(month)}</strong>'
        if month:
            price += f" <small>{words['per_month'][lang]}</small></p>\n\n"
            yearly = words["per_year"][lang].format(price=tenge(plan["price_year_tiyn"]))
            price += f'<p class="price-year"><small>{yearly}</small></p>'
        else:
            price += "</p>"
        points = "\n".join(f"- {point}" for point in plan["points"][lang])
        cards.append(
            f'<div class="plan{featured}" markdown>\n\n### {plan["name"][lang]}\n\n{price}\n\n'
            f"{plan['tagline'][lang]}\n\n{points}\n\n</div>"
        )
    trial = plans.get("trial") or {}
    named = next((p for p in plans["plans"] if p["code"] == trial.get("plan")), None)
    note = ""
    if named and trial.get("days"):
        words_of_trial = words["trial"][lang].format(days=trial["days"], plan=named["name"][lang])
        note = f'\n\n<p class="note">{words_of_trial}</p>'
    return '<div class="plans" markdown>\n' + "\n".join(cards) + "\n</div>" + note


# --- placeholders ---------------------------------------------------------------------------


def resolve_placeholders(declared: Any) -> dict[str, str]:
    """Defaults from mkdocs.yml `extra.placeholders`, each overridden by its environment variable."""
    if not isinstance(declared, dict) or not declared:
        raise LandingError("mkdocs.yml: extra.placeholders must map placeholder names to values")
    values: dict[str, str] = {}
    for name, default in declared.items():
        if not isinstance(name, str) or not PLACEHOLDER_NAME_RE.fullmatch(name):
            raise LandingError(f"mkdocs.yml: extra.placeholders: {name!r} is not a valid name")
        if name in os.environ:
            value, source = os.environ[name], f"the environment variable {name}"
        else:
            value, source = default, f"mkdocs.yml extra.placeholders.{name}"
        if value is None or not str(value).strip():
            raise LandingError(
                f"placeholder ${{{name}}} has no value: {source} is empty "
                f"(set {name} in the environment or in mkdocs.yml extra.placeholders)"
            )
        if "${" in str(value):
            raise LandingError(f"placeholder ${{{name}}}: its value may not contain '${{'")
        values[name] = str(value).strip()
    return values


def substitute(text: str, values: dict[str, str], where: str) -> str:
    """Replace every `${NAME}`; an undeclared NAME stops the build."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise LandingError(
                f"{where}: placeholder ${{{name}}} has no value: it is not declared in "
                f"mkdocs.yml extra.placeholders (declared: {', '.join(sorted(values))})"
            )
        return values[name]

    return PLACEHOLDER_RE.sub(replace, text)


# --- pages, languages, alternates -----------------------------------------------------------


def _lang_of(src_uri: str) -> str | None:
    head = src_uri.split("/", 1)[0]
    return head if head in LANGS and "/" in src_uri else None


def _counterpart(src_uri: str, lang: str) -> str:
    return lang + src_uri[2:]


def _policy_page(src_uri: str) -> tuple[str, str] | None:
    """(lang, version or 'index') for a privacy-policy page, else None."""
    match = POLICY_PAGE_RE.fullmatch(src_uri)
    if match and match["lang"] in LANGS:
        return match["lang"], match["name"]
    return None


def _abs_url(state: State, file: File) -> str:
    return urljoin(state.site_url, file.url)


def _file(state: State, src_uri: str) -> File:
    assert state.files is not None
    found = state.files.get_file_from_path(src_uri)
    if found is None:
        raise LandingError(f"landing: {src_uri} is missing")
    return found


def _canonical(state: State, file: File) -> File:
    """The current version's dated page says the same as /{lang}/privacy/: that one is canonical."""
    policy = _policy_page(file.src_uri)
    if policy and policy[1] == state.current.version:
        return _file(state, f"{policy[0]}/privacy/index.md")
    return file


def alternates(state: State, file: File, relative_to: File | None = None) -> list[dict[str, str]]:
    """hreflang alternates of a page: one per language plus x-default."""
    if _lang_of(file.src_uri) is None:  # the chooser: the three home pages
        targets = {code: _file(state, f"{code}/index.md") for code in LANGS}
    else:
        targets = {code: _file(state, _counterpart(file.src_uri, code)) for code in LANGS}
    # x-default: the chooser for the home pages (and itself), English for everything else
    is_home = file.src_uri == "index.md" or file.src_uri in {f"{c}/index.md" for c in LANGS}
    default = _file(state, "index.md") if is_home else targets["en"]
    result = []
    for code in (*LANGS, "x-default"):
        target = default if code == "x-default" else targets[code]
        item = {
            "hreflang": code,
            "lang": "" if code == "x-default" else code,
            "label": "" if code == "x-default" else state.ui[code]["language_name"],
            "abs_url": _abs_url(state, target),
        }
        if relative_to is not None:
            item["href"] = target.url_relative_to(relative_to)
        result.append(item)
    return result


def format_date(state: State, day: dt.date, lang: str) -> str:
    ui = state.ui[lang]
    return ui["date_format"].format(day=day.day, month=ui["months"][day.month - 1], year=day.year)


def _policy_context(state: State, page_file: File, lang: str, name: str) -> dict[str, Any]:
    ui = state.ui[lang]
    shown = (
        state.current if name == "index" else next(v for v in state.versions if v.version == name)
    )
    status = shown.status(state.current)
    listed = []
    for version in state.versions:
        version_status = version.status(state.current)
        listed.append(
            {
                "version": version.version,
                "label": format_date(state, version.effective_at, lang),
                "published": format_date(state, version.published_at, lang),
                "href": _file(state, f"{lang}/privacy/{version.version}.md").url_relative_to(
                    page_file
                ),
                "status": version_status,
                "status_label": ui[f"status_{version_status}"],
                "shown": version.version == shown.version,
            }
        )
    return {
        "version": shown.version,
        "status": status,
        "status_label": ui[f"status_{status}"],
        "published": format_date(state, shown.published_at, lang),
        "effective": format_date(state, shown.effective_at, lang),
        "summary": shown.summary[lang],
        "is_index": name == "index",
        "current_href": _file(state, f"{lang}/privacy/index.md").url_relative_to(page_file),
        "versions": listed,
    }


# --- MkDocs events --------------------------------------------------------------------------


def on_config(config: Any) -> Any:
    global _state
    root = Path(config.config_file_path).resolve().parent
    docs_dir = Path(config.docs_dir).resolve()
    if not config.site_url:
        raise LandingError("mkdocs.yml: site_url is required (hreflang and sitemap need it)")
    extra = config.extra
    placeholders = resolve_placeholders(extra.get("placeholders"))
    versions_path = root / extra.get("policy_versions", "policy/versions.yml")
    versions, current = load_versions(versions_path, root, docs_dir, build_day())
    ui_path = root / extra.get("ui_strings", "landing_hooks/ui.yml")
    ui = yaml.safe_load(ui_path.read_text(encoding="utf-8"))
    if not isinstance(ui, dict) or set(ui) != set(LANGS):
        raise LandingError(f"{ui_path.name} must have exactly the languages {', '.join(LANGS)}")
    keys = set(ui["en"])
    for lang in LANGS:
        if set(ui[lang]) != keys:
            diff = sorted(keys.symmetric_difference(ui[lang]))
            raise LandingError(f"{ui_path.name}: {lang} differs from en in keys {diff}")
        for key, value in ui[lang].items():
            if isinstance(value, str):
                ui[lang][key] = substitute(value, placeholders, f"{ui_path.name}: {lang}.{key}")
    # Templates show the resolved contacts (footer, contacts block).
    extra["placeholders"] = placeholders
    plans = load_plans(root / extra.get("plans", "policy/plans.yml"))
    _state = State(
        site_url=config.site_url,
        docs_dir=docs_dir,
        versions=versions,
        current=current,
        placeholders=placeholders,
        ui=ui,
        plans=plans,
    )
    return config


def on_files(files: Files, config: Any) -> Files:
    state = _get_state()
    listed = {(lang, v.version) for v in state.versions for lang in LANGS}
    for file in files.documentation_pages():
        src = file.src_uri
        if src != "index.md" and _lang_of(src) is None:
            raise LandingError(
                f"landing/{src}: pages live in landing/en, landing/ru or landing/kk "
                "(landing/index.md is the language chooser)"
            )
        policy = _policy_page(src)
        if policy and policy[1] == "index":
            raise LandingError(
                f"landing/{src} is generated from policy/versions.yml (current version); remove it"
            )
        if policy and policy not in listed:
            raise LandingError(
                f"landing/{src} looks like a policy version but is not in policy/versions.yml"
            )
    root = Path(config.config_file_path).resolve().parent
    for lang in LANGS:
        text = (root / state.current.files[lang]).read_text(encoding="utf-8")
        files.append(File.generated(config, f"{lang}/privacy/index.md", content=text))
    robots = f"User-agent: *\nAllow: /\nSitemap: {urljoin(config.site_url, 'sitemap.xml')}\n"
    files.append(File.generated(config, "robots.txt", content=robots))

    pages = list(files.documentation_pages())
    sources = {f.src_uri for f in pages}
    for src in sorted(sources):
        lang = _lang_of(src)
        if lang is None:
            continue
        missing = [code for code in LANGS if _counterpart(src, code) not in sources]
        if missing:
            raise LandingError(f"landing/{src} has no translation in {', '.join(missing)}")
    state.files = files
    state.pages = pages
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    state = _get_state()
    where = f"landing/{page.file.src_uri}"
    for key, value in list(page.meta.items()):
        if isinstance(value, str):
            page.meta[key] = substitute(value, state.placeholders, f"{where} (front matter {key})")
    if _policy_page(page.file.src_uri):
        page.meta["template"] = "privacy.html"
    if PLANS_MARKER in markdown:
        lang = _lang_of(page.file.src_uri)
        if lang is None:
            raise LandingError(f"{where}: {PLANS_MARKER} belongs in a language's page")
        markdown = markdown.replace(PLANS_MARKER, plans_markdown(state.plans, lang))
    return substitute(markdown, state.placeholders, where)


def on_page_context(context: dict[str, Any], page: Any, config: Any, nav: Any) -> dict[str, Any]:
    state = _get_state()
    file = page.file
    lang = _lang_of(file.src_uri)
    context["lang"] = lang or ROOT_LANG
    context["ui_all"] = state.ui
    context["languages"] = LANGS
    context["alternates"] = alternates(state, file, relative_to=file)
    context["canonical_url"] = _abs_url(state, _canonical(state, file))
    if lang:
        context["ui"] = state.ui[lang]
        context["home_url"] = _file(state, f"{lang}/index.md").url_relative_to(file)
        context["privacy_url"] = _file(state, f"{lang}/privacy/index.md").url_relative_to(file)
        policy = _policy_page(file.src_uri)
        context["policy"] = _policy_context(state, file, *policy) if policy else None
    return context


def on_template_context(context: dict[str, Any], template_name: str, config: Any) -> dict:
    if template_name == "sitemap.xml":
        state = _get_state()
        context["sitemap_entries"] = [
            {"loc": _abs_url(state, file), "alternates": alternates(state, file)}
            for file in state.pages
            if _canonical(state, file) is file
        ]
    return context


def on_post_build(config: Any) -> None:
    site_dir = Path(config.site_dir)
    leftovers = [
        path.relative_to(site_dir).as_posix()
        for path in sorted(site_dir.rglob("*"))
        if path.suffix in TEXT_SUFFIXES
        and "${" in path.read_text(encoding="utf-8", errors="replace")
    ]
    if leftovers:
        raise LandingError(f"'${{' survived into the built site: {', '.join(leftovers)}")
