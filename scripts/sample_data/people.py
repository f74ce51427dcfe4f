"""Residents of every household and one grid member per grid (all synthetic, seeded).

Resident ID numbers follow GB 11643-1999: region code 511703 (Dachuan), birth date YYYYMMDD,
a 3-digit sequence whose last digit is odd for men and even for women, and the ISO 7064
MOD 11-2 check character. Real people born before Dachuan got code 511703 (2013) carry the old
Da County code; the sample uses 511703 throughout, as the platform's rules ask.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from scripts.sample_data import AS_OF, SOURCE_TAG, WORK_EPSG

__all__ = ["build_members", "build_residents", "id_check_char"]

# Common surnames of north-east Sichuan, most frequent first (weights ~ frequency).
_SURNAMES = list("王李张刘陈杨黄赵周吴徐孙胡朱高何罗郭唐邓蒋谢冯曾彭向杜熊廖袁蒲付谭任余")
_SURNAME_W = np.linspace(3.0, 0.6, len(_SURNAMES))
_MALE = list("伟强军勇杰涛斌超明刚平辉鹏华飞鑫波宇浩凯健俊帆帅旭宁龙林洋磊成建国志文海云兵春东亮")
_FEMALE = list("芳娟敏静丽艳娜燕玲霞莉萍红英琴梅兰婷雪慧颖倩琳洁蓉丹秀凤玉佳欣怡瑶悦月")
_PREFIXES = np.array(
    [
        "38",
        "39",
        "58",
        "59",
        "82",
        "87",
        "88",
        "35",
        "36",
        "37",
        "50",
        "51",
        "52",
        "57",
        "30",
        "31",
        "32",
        "55",
        "56",
        "85",
        "86",
        "33",
        "53",
        "77",
        "80",
        "81",
        "89",
        "99",
    ]
)
_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
_CHECK = np.array(list("10X98765432"))

# Relation to the household head (户主) by household size (rows 1..7) and position, two
# variants each (B: with parents of the head, or grandchildren).
_ROLES = ("户主", "配偶", "子女", "父母", "孙子女")
_A = [
    [0],
    [0, 1],
    [0, 1, 2],
    [0, 1, 2, 2],
    [0, 1, 2, 2, 3],
    [0, 1, 2, 2, 4, 4],
    [0, 1, 2, 2, 4, 4, 3],
]
_B = [
    [0],
    [0, 2],
    [0, 1, 3],
    [0, 1, 2, 3],
    [0, 1, 2, 4, 4],
    [0, 1, 2, 3, 3, 4],
    [0, 1, 2, 2, 4, 4, 4],
]
_EDUCATION = ("初中", "高中", "中专", "大专", "本科", "研究生")
_EDU_P = (0.05, 0.25, 0.15, 0.30, 0.23, 0.02)


def id_check_char(body17: NDArray[np.str_]) -> NDArray[np.str_]:
    """ISO 7064 MOD 11-2 check characters of 17-digit ID bodies (GB 11643).

    Examples
    --------
    >>> id_check_char(np.array(["11010519491231002"])).tolist()
    ['X']
    """
    digits = np.frombuffer("".join(body17).encode("ascii"), dtype=np.uint8).reshape(-1, 17) - 48
    return _CHECK[(digits.astype(np.int64) @ _WEIGHTS) % 11]


def _names(rng: np.random.Generator, male: NDArray[np.bool_], surname: NDArray) -> NDArray:
    n = male.size
    pool_m, pool_f = np.array(_MALE), np.array(_FEMALE)
    first = np.where(
        male, pool_m[rng.integers(0, pool_m.size, n)], pool_f[rng.integers(0, pool_f.size, n)]
    )
    second = np.where(
        male, pool_m[rng.integers(0, pool_m.size, n)], pool_f[rng.integers(0, pool_f.size, n)]
    )
    two = rng.random(n) < 0.7
    given = np.where(two, np.char.add(first, second), first)
    return np.char.add(surname.astype(str), given)


def _surnames(rng: np.random.Generator, n: int) -> NDArray:
    return np.array(_SURNAMES)[rng.choice(len(_SURNAMES), n, p=_SURNAME_W / _SURNAME_W.sum())]


def build_residents(
    rng: np.random.Generator, households: pd.DataFrame, *, taken: NDArray[np.str_] | None = None
) -> pd.DataFrame:
    """Every person of every household, with a valid, unique GB 11643 ID number.

    Parameters
    ----------
    households
        ``hh_id``, ``vill_code``, ``people`` (1-7).
    taken
        ID numbers already given to people of other towns (kept unique across towns).

    Returns
    -------
    pandas.DataFrame
        ``hh_id, seq, name, id_number, gender, birth_date, phone, relation, whereabouts,
        vill_code`` (gender ``M``/``F``, dates ``YYYY-MM-DD``).
    """
    size = households["people"].to_numpy()
    n_hh = size.size
    variant_b = rng.random(n_hh) < 0.35
    hh = np.repeat(np.arange(n_hh), size)
    pos = np.arange(hh.size) - np.repeat(np.cumsum(size) - size, size)
    table_a = np.full((8, 7), -1)
    table_b = np.full((8, 7), -1)
    for k in range(7):
        table_a[k + 1, : k + 1] = _A[k]
        table_b[k + 1, : k + 1] = _B[k]
    role = np.where(variant_b[hh], table_b[size[hh], pos], table_a[size[hh], pos])

    has_grand = np.zeros(n_hh, bool)
    has_parent = np.zeros(n_hh, bool)
    np.logical_or.at(has_grand, hh, role == 4)
    np.logical_or.at(has_parent, hh, role == 3)
    head_age = np.clip(rng.normal(52, 13, n_hh), 22, 88)
    head_age = np.where(has_grand, rng.uniform(55, 78, n_hh), head_age)
    head_age = np.where(has_parent & ~has_grand, rng.uniform(32, 55, n_hh), head_age)
    ha = head_age[hh]
    m = hh.size
    age = np.select(
        [role == 0, role == 1, role == 2, role == 3],
        [ha, ha + rng.normal(0, 3, m), ha - rng.uniform(22, 32, m), ha + rng.uniform(22, 30, m)],
        ha - rng.uniform(44, 58, m),
    )
    age = np.clip(age, 0.1, 99)
    age = np.where(role == 1, np.maximum(age, 20), age)

    head_male = rng.random(n_hh) < 0.78
    male = np.where(role == 0, head_male[hh], rng.random(m) < 0.5)
    male = np.where(role == 1, ~head_male[hh], male)
    head_surname = _surnames(rng, n_hh)
    own_surname = _surnames(rng, m)
    surname = np.where(
        (role == 0) | (role == 2) | (role == 4) | ((role == 3) & male),
        head_surname[hh],
        own_surname,
    )
    names = _names(rng, male, surname)

    days = np.floor(age * 365.2425).astype("timedelta64[D]")
    birth = np.datetime64(AS_OF.isoformat()) - days
    birth_s = np.datetime_as_string(birth, unit="D")
    region = "511703"
    seq = rng.integers(0, 500, m) * 2 + male.astype(int)
    ids = np.empty(m, dtype="<U18")
    todo = np.arange(m)
    while todo.size:  # redraw sequence numbers until every ID is unique
        body = np.char.add(
            np.char.add(region, np.char.replace(birth_s[todo], "-", "")),
            np.char.zfill(seq[todo].astype(str), 3),
        )
        ids[todo] = np.char.add(body, id_check_char(body))
        dup = pd.Series(ids).duplicated().to_numpy().copy()
        if taken is not None:
            dup |= np.isin(ids, taken)
        todo = np.flatnonzero(dup)
        seq[todo] = rng.integers(0, 500, todo.size) * 2 + male[todo].astype(int)

    phone = np.char.add(
        np.char.add("1", _PREFIXES[rng.integers(0, _PREFIXES.size, m)]),
        np.char.zfill(rng.integers(0, 10**8, m).astype(str), 8),
    )
    phone = np.where(age >= 14, phone, "")
    away = (age >= 18) & (age < 56) & (rng.random(m) < 0.3)
    school = (age >= 6) & (age < 22) & (rng.random(m) < 0.9)
    where = np.select([away, school], ["外出务工", "在校"], "在家")
    return pd.DataFrame(
        {
            "hh_id": households["hh_id"].to_numpy()[hh],
            "seq": pos + 1,
            "name": names,
            "id_number": ids,
            "gender": np.where(male, "M", "F"),
            "birth_date": birth_s,
            "phone": phone,
            "relation": np.array(_ROLES)[role],
            "whereabouts": where,
            "vill_code": households["vill_code"].to_numpy()[hh],
            "age": age,
        }
    )


def build_members(
    rng: np.random.Generator, residents: pd.DataFrame, households: gpd.GeoDataFrame
) -> gpd.GeoDataFrame:
    """One grid member per grid, chosen among the grid's own residents.

    About 90 % are 22-45 years old (article 6: at most 45) and 5 % have only junior-middle
    school, so the platform's eligibility check has cases to reject.

    Returns
    -------
    geopandas.GeoDataFrame
        Points at the member's home (EPSG:4545): ``member_id, name, gender, birth_date,
        education, party, grid_code, status, phone, hh_id, vill_code``.
    """
    res = residents.merge(households[["hh_id", "grid_code"]], on="hh_id")
    res = res[(res["age"] >= 22) & (res["age"] < 51)].copy()
    grids = np.sort(households["grid_code"].unique())
    want_old = pd.Series(rng.random(grids.size) < 0.1, index=grids)
    young = res["age"] < 46
    res["key"] = rng.random(len(res)) + np.where(young == ~res["grid_code"].map(want_old), 0, 1)
    pick = res.sort_values(["grid_code", "key"]).groupby("grid_code").head(1)
    pick = pick.set_index("grid_code").reindex(grids).reset_index()
    n = len(pick)
    home = households.set_index("hh_id").geometry.reindex(pick["hh_id"]).to_numpy()
    return gpd.GeoDataFrame(
        {
            "member_id": "M" + pick["grid_code"],
            "name": pick["name"].to_numpy(),
            "gender": pick["gender"].to_numpy(),
            "birth_date": pick["birth_date"].to_numpy(),
            "education": np.array(_EDUCATION)[rng.choice(len(_EDUCATION), n, p=_EDU_P)],
            "party": np.where(rng.random(n) < 0.4, "Y", "N"),
            "grid_code": pick["grid_code"].to_numpy(),
            "status": "appointed",
            "phone": pick["phone"].to_numpy(),
            "hh_id": pick["hh_id"].to_numpy(),
            "vill_code": pick["vill_code"].to_numpy(),
            "synthetic": "Y",
            "source": SOURCE_TAG,
        },
        geometry=home,
        crs=WORK_EPSG,
    )
