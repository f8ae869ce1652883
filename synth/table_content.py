"""Cell text for synthetic tables: seeded templates for English and Chinese, plain and financial style.

`synth.tables` asks for a header label, a row label or a value of a column kind (integer, decimal,
percentage, currency, date, word, mixed); this module only makes strings. Financial style writes
negatives in parentheses and thousands separators, as annual reports do.
"""

from __future__ import annotations

import random

COLUMN_KINDS = ("integer", "decimal", "percent", "currency", "date", "word", "mixed")
LANGS = ("en", "zh")

HEADER_WORDS = {
    "en": ("Item", "Year", "Total", "Region", "Segment", "Revenue", "Cost", "Margin", "Change", "Growth", "Share",
           "Amount", "Balance", "Assets", "Liabilities", "Equity", "Notes", "Period", "Actual", "Budget", "Variance",
           "Model", "Method", "Dataset", "Accuracy", "Precision", "Recall", "F1", "Params", "Time", "Score", "Mean",
           "Std", "Min", "Max", "Count", "Rate", "Price", "Volume", "Group", "Category", "Value", "Units"),
    "zh": ("项目", "年度", "合计", "地区", "分部", "营业收入", "营业成本", "毛利率", "变动", "增长率", "占比", "金额",
           "本期金额", "上期金额", "期末余额", "期初余额", "附注", "本期", "上期", "预算", "差异", "模型", "方法", "数据集",
           "准确率", "召回率", "参数量", "时间", "得分", "均值", "最小值", "最大值", "数量", "比率", "单价", "类别", "数值"),
}
GROUP_WORDS = {
    "en": ("2021", "2022", "2023", "2024", "Q1", "Q2", "Q3", "Q4", "Domestic", "International", "Current year",
           "Prior year", "Consolidated", "Parent company", "Baseline", "Ours", "Train", "Test", "Validation"),
    "zh": ("2021年", "2022年", "2023年", "2024年", "第一季度", "第二季度", "第三季度", "第四季度", "境内", "境外",
           "本年", "上年", "合并", "母公司", "基线", "本文方法", "训练集", "测试集"),
}
ROW_LABELS = {
    "en": ("Cash and cash equivalents", "Accounts receivable", "Inventories", "Property and equipment", "Goodwill",
           "Total assets", "Short-term borrowings", "Accounts payable", "Total liabilities", "Retained earnings",
           "Net revenue", "Operating income", "Net income", "Earnings per share", "North America", "Europe",
           "Asia Pacific", "Other", "Subtotal", "Total", "ResNet-50", "ViT-B/16", "BERT-base", "Linear probe",
           "Fine-tuning", "Zero-shot", "Average", "Control group", "Treatment", "Baseline"),
    "zh": ("货币资金", "应收账款", "存货", "固定资产", "无形资产", "商誉", "资产总计", "短期借款", "应付账款", "负债合计",
           "未分配利润", "所有者权益合计", "营业总收入", "营业利润", "利润总额", "净利润", "基本每股收益", "华东地区",
           "华南地区", "华北地区", "海外", "其他", "小计", "合计", "对照组", "实验组", "平均值", "基线模型"),
}
WORDS = {
    "en": ("yes", "no", "n/a", "high", "low", "medium", "stable", "active", "pending", "closed", "open", "approved",
           "red", "blue", "green", "large", "small", "fixed", "variable", "annual", "monthly"),
    "zh": ("是", "否", "不适用", "高", "低", "中", "稳定", "进行中", "已完成", "待定", "已批准", "固定", "浮动", "年度",
           "月度", "良好", "一般"),
}
UNITS = {"en": ("kg", "km", "ms", "GB", "h", "m²", "USD", "units"), "zh": ("万元", "亿元", "千克", "公里", "小时", "人", "台")}
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def grouped(value: float, decimals: int) -> str:
    return f"{value:,.{decimals}f}"


def signed(text: str, negative: bool, financial: bool) -> str:
    """A negative amount as `(1,234)` in financial style, `-1,234` otherwise."""
    if not negative:
        return text
    return f"({text})" if financial else f"-{text}"


def column_value(rng: random.Random, kind: str, lang: str, financial: bool) -> str:
    """One body cell of a column of `kind`."""
    negative = rng.random() < (0.2 if financial else 0.1)
    if kind == "integer":
        return signed(grouped(rng.randint(0, 10 ** rng.randint(1, 7)), 0), negative, financial)
    if kind == "decimal":
        return signed(grouped(rng.uniform(0, 10 ** rng.randint(0, 6)), rng.choice((1, 2, 2, 3))), negative, financial)
    if kind == "percent":
        return signed(f"{rng.uniform(0, 100):.{rng.choice((1, 2))}f}%", negative, financial)
    if kind == "currency":
        amount = signed(grouped(rng.uniform(0, 10 ** rng.randint(2, 8)), 2), negative, financial)
        if lang == "zh":
            return rng.choice((f"¥{amount}", f"{amount}万元", amount))
        return rng.choice((f"${amount}", f"€{amount}", amount))
    if kind == "date":
        year, month, day = rng.randint(1995, 2025), rng.randint(1, 12), rng.randint(1, 28)
        if lang == "zh":
            return rng.choice((f"{year}年{month}月{day}日", f"{year}-{month:02d}-{day:02d}", f"{year}.{month:02d}"))
        return rng.choice((f"{year}-{month:02d}-{day:02d}", f"{MONTHS[month - 1]} {day}, {year}",
                           f"{month}/{day}/{year}"))
    if kind == "word":
        return rng.choice(WORDS[lang])
    if kind == "mixed":
        return f"{rng.uniform(0, 1000):.{rng.choice((0, 1))}f} {rng.choice(UNITS[lang])}"
    raise ValueError(f"unknown column kind {kind!r}; choose from {', '.join(COLUMN_KINDS)}")


def header_label(rng: random.Random, lang: str, level: int, levels: int) -> str:
    """A header cell: group names (years, quarters, segments) on upper levels, column names on the lowest."""
    return rng.choice(GROUP_WORDS[lang] if level < levels - 1 else HEADER_WORDS[lang])


def row_label(rng: random.Random, lang: str) -> str:
    return rng.choice(ROW_LABELS[lang])
