# histogram_quantiles: reads two Prometheus scrapes (before, after: FILENAME order) of
# histogram `metric` labelled by `label`, prints a JSON object {<label value>: {count,
# sum_seconds, mean, p50, p99}} of the observations between them (quantiles interpolated
# within buckets, as PromQL histogram_quantile).
function q(v, qq,    i, rank, prev, cum, prevcum, b) {
  rank = qq * tot[v]; prev = 0; prevcum = 0
  for (i = 1; i <= nb[v]; i++) {
    b = bound[v, i]; cum = d[v, b]
    if (cum >= rank) {
      if (b == "+Inf") return prev
      if (cum == prevcum) return b
      return prev + (b - prev) * (rank - prevcum) / (cum - prevcum)
    }
    if (b != "+Inf") prev = b
    prevcum = cum
  }
  return prev
}
FNR == 1 { file++ }
{
  if (index($0, metric "_bucket{") == 1 || index($0, metric "_sum{") == 1) {
    if (!match($0, label "=\"[^\"]*\"")) next
    v = substr($0, RSTART + length(label) + 2, RLENGTH - length(label) - 3)
    val = $NF
    if (index($0, metric "_sum{") == 1) { s[file, v] = val; vals[v] = 1; next }
    match($0, /le="[^"]*"/); le = substr($0, RSTART + 4, RLENGTH - 5)
    c[file, v, le] = val; les[v, le] = 1; vals[v] = 1
  }
}
END {
  printf "{"; first = 1
  for (v in vals) {
    n = 0
    for (k in les) { split(k, p, SUBSEP); if (p[1] == v) { n++; arr[n] = p[2] } }
    # sort bounds numerically, +Inf last
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) {
      a = (arr[i] == "+Inf") ? 1e300 : arr[i] + 0; bb = (arr[j] == "+Inf") ? 1e300 : arr[j] + 0
      if (bb < a) { t = arr[i]; arr[i] = arr[j]; arr[j] = t }
    }
    nb[v] = n
    for (i = 1; i <= n; i++) { bound[v, i] = arr[i]; d[v, arr[i]] = c[2, v, arr[i]] - c[1, v, arr[i]] }
    tot[v] = d[v, "+Inf"]
    if (tot[v] <= 0) continue
    sum = s[2, v] - s[1, v]
    printf "%s\"%s\":{\"count\":%d,\"sum_seconds\":%.4f,\"mean\":%.4f,\"p50\":%.4f,\"p99\":%.4f}", first ? "" : ",", v, tot[v], sum, sum / tot[v], q(v, 0.5), q(v, 0.99)
    first = 0
  }
  print "}"
}
