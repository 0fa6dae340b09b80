"""The statistics of a value over repetitions: count, mean, std, 95 % CI.

The confidence interval of a mean over few runs uses Student's t, whose
quantile comes from a table up to 30 degrees of freedom and from the
Cornish-Fisher expansion beyond: no scipy.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["T_975", "Z_975", "describe", "t_quantile"]

#: the 0.975 quantile of Student's t for 1 to 30 degrees of freedom
T_975 = (
    12.7062047, 4.3026527, 3.1824463, 2.7764451, 2.5705818,
    2.4469119, 2.3646243, 2.3060041, 2.2621572, 2.2281389,
    2.2009852, 2.1788128, 2.1603687, 2.1447867, 2.1314495,
    2.1199053, 2.1098156, 2.1009220, 2.0930241, 2.0859634,
    2.0796138, 2.0738731, 2.0686576, 2.0638986, 2.0595386,
    2.0555294, 2.0518305, 2.0484071, 2.0452296, 2.0422725,
)  # fmt: skip
#: the 0.975 quantile of the standard normal distribution
Z_975 = 1.959963984540054


def t_quantile(dof: float) -> float:
    """The 0.975 quantile of Student's t with ``dof`` degrees of freedom.

    A table up to 30 degrees of freedom, the Cornish-Fisher expansion
    around the normal quantile beyond (within 1e-5 of the exact value
    there); NaN below 1.
    """
    if not dof >= 1:
        return math.nan
    if dof <= len(T_975):
        return T_975[int(dof) - 1]
    z, n = Z_975, float(dof)
    terms = (
        (z**3 + z) / 4,
        (5 * z**5 + 16 * z**3 + 3 * z) / 96,
        (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384,
        (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160,
    )
    return z + sum(term / n ** (k + 1) for k, term in enumerate(terms))


def describe(values: np.ndarray, codes: np.ndarray, groups: int) -> pd.DataFrame:
    """count, mean, std and ci of ``values`` by group.

    :param values: float64 values, NaN where missing (left out).
    :param codes: the group of each value, 0 to ``groups - 1``.
    :returns: one row per group: ``count`` (values that are not missing),
        ``mean``, ``std`` (sample standard deviation, NaN for fewer than
        two values) and ``ci`` (half-width of the 95 % confidence interval
        of the mean: ``t * std / sqrt(count)``).
    """
    import numpy as np
    import pandas as pd

    present = ~np.isnan(values)
    codes, values = codes[present], values[present]
    count = np.bincount(codes, minlength=groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(codes, weights=values, minlength=groups) / count
        squares = np.bincount(
            codes, weights=(values - mean[codes]) ** 2, minlength=groups
        )
        std = np.where(count > 1, np.sqrt(squares / (count - 1)), np.nan)
        t = np.array([t_quantile(n - 1) for n in count.tolist()], dtype="float64")
        ci = t * std / np.sqrt(count)
    return pd.DataFrame(
        {"count": count.astype("int64"), "mean": mean, "std": std, "ci": ci}
    )
