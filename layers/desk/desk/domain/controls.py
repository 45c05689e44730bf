"""The pre-trade gate: one pure function, :func:`check_order`, that runs every control on an order.

Conventions
-----------
* Every check runs and every failure is reported (:class:`~desk.domain.controls_config.Reason`), so
  the audit log shows the whole picture, not the first miss.
* Risk-reducing: an order on the opposite side of the current position whose quantity fits in
  what is left of the position after the working orders on the same side (so it cannot flip the
  position even if they all fill). Only such orders pass while the kill switch is latched, and an
  order flagged ``reduce_only`` must be one.
* Exposure is worst case: per symbol, the larger of ``|position + open buys|`` and
  ``|position - open sells|`` (as if every working order on one side filled), valued at the mark
  (the quote's mid for the order's own symbol when there is a quote). Gross exposure, symbol and
  cluster concentration are fractions of equity, and an exposure limit fails only if the order
  raises an exposure that ends above its limit: an order that lowers exposure always passes.
* Clusters: single-linkage on the correlation snapshot, joining two symbols when their (signed)
  correlation is >= ``cluster_correlation_threshold``; a symbol outside the snapshot is its own
  cluster. Cluster exposure is the sum of the members' gross exposures (hedges are not netted).
* Collar: ``|limit - mid| / mid`` must not exceed the collar (``collar_liquid`` when the average
  daily volume is worth at least ``liquid_adv_notional``, ``collar_illiquid`` otherwise). A market
  order becomes an IOC limit at the collar edge, rounded on the tick grid towards the mid (a buy
  rounds down, a sell up), so it never pays beyond the collar.
* Staleness: quote age is ``now - quote.ts`` (the venue's time); the limit depends on the asset
  class of the order's venue (``GateConfig.venue_asset_classes``; unknown venues get the strictest).
* Counts (open orders, messages) include the order being checked: ``count + 1 > limit`` fails.
* Notional cap: on each order the venue receives. A parent worked as child orders
  (``OrderRequest.largest_child``) passes when its largest child is within the cap; each child is
  gated again when it is placed. Exposure, concentration and the volume share judge the parent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from types import MappingProxyType

from desk.domain.controls_config import (
    CorrelationLike,
    GateConfig,
    GateContext,
    GateDecision,
    OrderRequest,
    Reason,
    ReasonCode,
)
from desk.domain.errors import InvalidOrder
from desk.domain.instruments import DECIMAL_CONTEXT, Instrument, PrecisionMode, decimal_sum
from desk.domain.orders import Order, OrderType, Side, TimeInForce

__all__ = ["check_order", "collar_price", "correlation_clusters", "is_risk_reducing", "worst_case_quantity"]

_CTX = DECIMAL_CONTEXT
_ZERO = Decimal(0)


def check_order(intent: OrderRequest, context: GateContext, config: GateConfig) -> GateDecision:
    """Run every pre-trade control on ``intent``; accept only if none fails. Pure (``now`` is in ``context``)."""
    reasons: list[Reason] = []
    order = intent
    adjustments: dict[str, object] = {}
    mid = _mid(intent, context, config, reasons)
    instrument = _instrument(intent, context, config, reasons)
    collar = _collar(context, config, mid)

    if mid is not None and collar is not None:
        if intent.order_type is OrderType.MARKET and instrument is not None:
            edge = collar_price(instrument, intent.side, mid, collar)
            adjustments = {"order_type": OrderType.LIMIT, "limit_price": edge, "time_in_force": TimeInForce.IOC}
            order = replace(intent, order_type=OrderType.LIMIT, limit_price=edge, time_in_force=TimeInForce.IOC)
        elif intent.limit_price is not None:
            reasons.extend(_check_collar(intent.limit_price, mid, collar))

    price = order.limit_price or mid or context.marks.get(intent.symbol)
    if instrument is not None:
        reasons.extend(_check_filters(instrument, order.quantity, order.limit_price))
    reducing = is_risk_reducing(intent, context.positions.get(intent.symbol, _ZERO), context.open_orders)
    if context.kill_switch_latched and not reducing:
        reasons.append(Reason(ReasonCode.KILL_SWITCH, "kill switch latched: only risk-reducing orders pass"))
    if intent.reduce_only and not reducing:
        reasons.append(Reason(ReasonCode.REDUCE_ONLY_INCREASES, "reduce_only order would open or flip a position"))
    reasons.extend(_check_notional(intent, price, context, config))
    reasons.extend(_check_adv(intent, context, config))
    reasons.extend(_check_duplicate(intent, context, config))
    reasons.extend(_check_exposure(intent, mid if mid is not None else price, context, config))
    reasons.extend(_check_counts(intent, context, config))
    return GateDecision(
        accepted=not reasons,
        reasons=tuple(reasons),
        order=order,
        adjustments=MappingProxyType(adjustments),
        risk_reducing=reducing,
    )


# -- reference price and instrument ------------------------------------------------------------


def _mid(intent: OrderRequest, context: GateContext, config: GateConfig, reasons: list[Reason]) -> Decimal | None:
    quote = context.quote
    if quote is None or (quote.venue, quote.symbol) != (intent.venue, intent.symbol):
        reasons.append(Reason(ReasonCode.QUOTE_MISSING, f"no quote for {intent.venue}/{intent.symbol}"))
        return None
    age = context.now - quote.ts
    limit = config.max_quote_age[config.asset_class(intent.venue)]
    if age > limit:
        message = f"quote for {intent.symbol} is {age.total_seconds():.3f}s old (limit {limit.total_seconds():g}s)"
        reasons.append(Reason(ReasonCode.QUOTE_STALE, message))
    elif -age > config.max_clock_skew:
        ahead, skew = (-age).total_seconds(), config.max_clock_skew.total_seconds()
        message = f"quote for {intent.symbol} is stamped {ahead:.3f}s ahead of the desk's clock (skew limit {skew:g}s)"
        reasons.append(Reason(ReasonCode.QUOTE_STALE, message))
    return _CTX.divide(_CTX.add(quote.bid, quote.ask), 2)


def _instrument(
    intent: OrderRequest, context: GateContext, config: GateConfig, reasons: list[Reason]
) -> Instrument | None:
    if intent.symbol not in config.allowed_symbols:
        reasons.append(Reason(ReasonCode.NOT_ALLOWED, f"{intent.symbol} is not on the allow-list"))
    instrument = context.instrument
    if instrument is not None and (instrument.venue, instrument.symbol) != (intent.venue, intent.symbol):
        instrument = None  # another market's instrument is no instrument for this order
    if intent.symbol in context.halted_symbols:
        reasons.append(Reason(ReasonCode.HALTED, f"{intent.symbol} is halted"))
    elif instrument is not None and not instrument.active:
        reasons.append(Reason(ReasonCode.HALTED, f"{intent.symbol} is halted at {intent.venue} (not trading)"))
    if instrument is None:
        reasons.append(Reason(ReasonCode.UNKNOWN_INSTRUMENT, f"no instrument for {intent.venue}/{intent.symbol}"))
    return instrument


def _check_filters(instrument: Instrument, quantity: Decimal, price: Decimal | None) -> list[Reason]:
    try:
        instrument.check_order(quantity, price)
    except InvalidOrder as exc:
        return [Reason(ReasonCode.INSTRUMENT_FILTER, f"{exc.reason}: {exc}")]
    return []


# -- price collar -----------------------------------------------------------------------------


def _collar(context: GateContext, config: GateConfig, mid: Decimal | None) -> Decimal | None:
    if mid is None:
        return None
    adv = context.average_daily_volume
    liquid = adv is not None and _CTX.multiply(adv, mid) >= config.liquid_adv_notional
    return config.collar_liquid if liquid else config.collar_illiquid


def _check_collar(limit_price: Decimal, mid: Decimal, collar: Decimal) -> list[Reason]:
    distance = _CTX.divide(abs(_CTX.subtract(limit_price, mid)), mid)
    if distance > collar:
        message = f"limit {limit_price} is {distance:.2%} from mid {mid} (collar {collar:.0%})"
        return [Reason(ReasonCode.PRICE_COLLAR, message)]
    return []


def collar_price(instrument: Instrument, side: Side, mid: Decimal, collar: Decimal) -> Decimal:
    """The collar edge for ``side`` on ``instrument``'s price grid, rounded towards ``mid``.

    A buy gets ``mid × (1 + collar)`` rounded down, a sell ``mid × (1 − collar)`` rounded up.
    """
    factor = _CTX.add(1, collar) if side is Side.BUY else _CTX.subtract(1, collar)
    edge = _CTX.multiply(mid, factor)
    rounding = ROUND_FLOOR if side is Side.BUY else ROUND_CEILING
    step = instrument.tick_size
    if step is not None:
        units = _CTX.divide(edge, step).to_integral_value(rounding=rounding, context=_CTX)
        tick_exponent = int(step.normalize(_CTX).as_tuple().exponent)
        price = _CTX.multiply(units, step).quantize(Decimal(1).scaleb(tick_exponent), context=_CTX)
    else:
        if instrument.precision_mode is not PrecisionMode.SIGNIFICANT_DIGITS:  # pragma: no cover - exhaustive
            raise ValueError(f"unsupported precision mode {instrument.precision_mode}")
        exponent = edge.adjusted() - int(instrument.price_precision) + 1
        price = edge.quantize(Decimal(1).scaleb(exponent), rounding=rounding, context=_CTX)
    if price <= 0:
        price = instrument.price_to_precision(mid)
    return price


# -- size: notional and volume ------------------------------------------------------------------


def _check_notional(
    intent: OrderRequest, price: Decimal | None, context: GateContext, config: GateConfig
) -> list[Reason]:
    if price is None:
        return [Reason(ReasonCode.MARK_MISSING, f"no price to value {intent.symbol}: notional cap not checkable")]
    quantity = intent.largest_child if intent.largest_child is not None else intent.quantity
    notional = _CTX.multiply(quantity, price)
    equity_cap = _CTX.multiply(config.max_order_equity_fraction, context.equity)
    cap = min(equity_cap, config.symbol_notional_cap(intent.symbol))
    if notional > cap:
        order = "largest child order" if intent.largest_child is not None else "order"
        message = f"{order} notional {notional} > cap {cap} (min of {config.max_order_equity_fraction:%} of equity "
        message += f"{context.equity} and the {intent.symbol} cap {config.symbol_notional_cap(intent.symbol)})"
        return [Reason(ReasonCode.NOTIONAL_CAP, message)]
    return []


def _short(value: Decimal) -> str:
    """Six significant digits, no exponent, no trailing zeros: for messages, never for arithmetic."""
    return format(Decimal(f"{value:.6g}").normalize(), "f")


def _check_adv(intent: OrderRequest, context: GateContext, config: GateConfig) -> list[Reason]:
    adv = context.average_daily_volume
    if adv is None:
        return [Reason(ReasonCode.ADV_UNKNOWN, f"no average daily volume for {intent.symbol}")]
    cap = _CTX.multiply(adv, config.max_adv_fraction)
    if intent.quantity > cap:
        share = f"{float(config.max_adv_fraction) * 100:g}%"
        message = f"quantity {intent.quantity} > {share} of ADV {_short(adv)} ({_short(cap)})"
        return [Reason(ReasonCode.ADV_SHARE, message)]
    return []


# -- duplicates, counts and throttle ---------------------------------------------------------------


def _check_duplicate(intent: OrderRequest, context: GateContext, config: GateConfig) -> list[Reason]:
    key = (intent.strategy, intent.symbol, intent.side, intent.quantity)
    for seen in context.recent_intents:
        # The same client order id is a retry of this very intent (the venue dedupes it), not a duplicate.
        if seen.client_order_id == intent.client_order_id:
            continue
        age = context.now - seen.at
        if (seen.strategy, seen.symbol, seen.side, seen.quantity) == key and age < config.duplicate_window:
            message = f"same strategy/symbol/side/quantity as {seen.client_order_id} {age.total_seconds():.3f}s ago"
            return [Reason(ReasonCode.DUPLICATE, message)]
    return []


def _check_counts(intent: OrderRequest, context: GateContext, config: GateConfig) -> list[Reason]:
    reasons = []
    working = [o for o in context.open_orders if not o.is_terminal and o.client_order_id != intent.client_order_id]
    same_symbol = sum(1 for o in working if o.symbol == intent.symbol)
    if same_symbol + 1 > config.max_open_orders_per_symbol:
        message = f"{same_symbol} open orders on {intent.symbol} (limit {config.max_open_orders_per_symbol})"
        reasons.append(Reason(ReasonCode.OPEN_ORDERS_SYMBOL, message))
    if len(working) + 1 > config.max_open_orders_total:
        message = f"{len(working)} open orders (limit {config.max_open_orders_total})"
        reasons.append(Reason(ReasonCode.OPEN_ORDERS_TOTAL, message))
    if context.messages_last_second + 1 > config.max_messages_per_second:
        message = f"{context.messages_last_second} messages in the last second (limit {config.max_messages_per_second})"
        reasons.append(Reason(ReasonCode.THROTTLE_SECOND, message))
    if context.messages_last_minute + 1 > config.max_messages_per_minute:
        message = f"{context.messages_last_minute} messages in the last minute (limit {config.max_messages_per_minute})"
        reasons.append(Reason(ReasonCode.THROTTLE_MINUTE, message))
    return reasons


# -- risk reduction and exposure --------------------------------------------------------------------


def is_risk_reducing(intent: OrderRequest, position: Decimal, open_orders: Iterable[Order]) -> bool:
    """True when ``intent`` shrinks ``|position|`` without flipping it, even if the working orders on
    its side (same symbol and side) fill first."""
    if position.is_zero() or (position > 0) == (intent.side is Side.BUY):
        return False
    same_side = decimal_sum(
        o.remaining_quantity
        for o in open_orders
        if not o.is_terminal
        and o.symbol == intent.symbol
        and o.side is intent.side
        and o.client_order_id != intent.client_order_id
    )
    return intent.quantity <= _CTX.subtract(position.copy_abs(), same_side)


def worst_case_quantity(position: Decimal, open_buys: Decimal, open_sells: Decimal) -> Decimal:
    """``max(|position + open_buys|, |position - open_sells|)``: the largest size the symbol can reach."""
    return max(abs(_CTX.add(position, open_buys)), abs(_CTX.subtract(position, open_sells)))


def correlation_clusters(correlation: CorrelationLike | None, threshold: float) -> dict[str, frozenset[str]]:
    """Each symbol of the snapshot mapped to its single-linkage cluster (correlation >= ``threshold``)."""
    if correlation is None:
        return {}
    symbols = list(correlation.symbols)
    parent = list(range(len(symbols)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, row in enumerate(correlation.matrix):
        for j in range(i + 1, len(symbols)):
            if row[j] >= threshold:
                parent[root(i)] = root(j)
    groups: dict[int, set[str]] = {}
    for i, symbol in enumerate(symbols):
        groups.setdefault(root(i), set()).add(symbol)
    return {s: frozenset(groups[root(i)]) for i, s in enumerate(symbols)}


def _exposures(
    context: GateContext, extra: OrderRequest | None, marks: Mapping[str, Decimal], symbols: Sequence[str]
) -> tuple[dict[str, Decimal], list[str]]:
    """Worst-case exposure per symbol (valued), and the symbols that have no mark."""
    buys: dict[str, Decimal] = {}
    sells: dict[str, Decimal] = {}
    orders: list[tuple[str, Side, Decimal]] = [
        (o.symbol, o.side, o.remaining_quantity)
        for o in context.open_orders
        if not o.is_terminal and (extra is None or o.client_order_id != extra.client_order_id)
    ]
    if extra is not None:
        orders.append((extra.symbol, extra.side, extra.quantity))
    for symbol, side, quantity in orders:
        book = buys if side is Side.BUY else sells
        book[symbol] = _CTX.add(book.get(symbol, _ZERO), quantity)
    values: dict[str, Decimal] = {}
    unvalued = []
    for symbol in symbols:
        size = worst_case_quantity(
            context.positions.get(symbol, _ZERO), buys.get(symbol, _ZERO), sells.get(symbol, _ZERO)
        )
        mark = marks.get(symbol)
        if mark is None:
            if not size.is_zero():
                unvalued.append(symbol)
            continue
        values[symbol] = _CTX.multiply(size, mark)
    return values, unvalued


def _check_exposure(
    intent: OrderRequest, price: Decimal | None, context: GateContext, config: GateConfig
) -> list[Reason]:
    held = set(context.positions) | {o.symbol for o in context.open_orders if not o.is_terminal}
    symbols = sorted(held | {intent.symbol})
    marks = dict(context.marks) | ({} if price is None else {intent.symbol: price})
    before, _ = _exposures(context, None, marks, symbols)
    after, unvalued = _exposures(context, intent, marks, symbols)
    if unvalued:
        return [Reason(ReasonCode.MARK_MISSING, f"no mark for {', '.join(unvalued)}: exposure not checkable")]
    equity = context.equity
    if equity <= 0:
        message = f"equity {equity} is not positive: exposure limits cannot pass"
        return [Reason(ReasonCode.GROSS_EXPOSURE, message)]
    clusters = correlation_clusters(context.correlation, config.cluster_correlation_threshold)
    cluster = clusters.get(intent.symbol, frozenset({intent.symbol}))
    checks = (
        (ReasonCode.GROSS_EXPOSURE, "gross exposure", symbols, config.max_gross_exposure),
        (
            ReasonCode.SYMBOL_CONCENTRATION,
            f"{intent.symbol} exposure",
            [intent.symbol],
            config.max_symbol_concentration,
        ),
        (
            ReasonCode.CLUSTER_CONCENTRATION,
            f"cluster {sorted(cluster)}",
            sorted(cluster),
            config.max_cluster_concentration,
        ),
    )
    reasons = []
    for code, label, members, limit in checks:
        new = _share(after, members, equity)
        old = _share(before, members, equity)
        if new > limit and new > old:
            reasons.append(Reason(code, f"{label} would be {new:.2%} of equity (limit {limit:.0%}, now {old:.2%})"))
    return reasons


def _share(values: Mapping[str, Decimal], members: Iterable[str], equity: Decimal) -> Decimal:
    return _CTX.divide(decimal_sum(values.get(s, _ZERO) for s in members), equity)
