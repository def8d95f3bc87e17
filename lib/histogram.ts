/**
 * The HDR histograms every latency is kept in: microseconds, up to an hour, three significant digits
 * (two, packed, for the many small per-second ones), so that instances and threads merge exactly.
 *
 *   const h = histogram();  h.recordValue(microseconds(12.5));
 */
import * as hdr from "hdr-histogram-js";

/** Latencies in microseconds, up to an hour; `packed` for the many small per-second histograms. */
export function histogram(packed = false) {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 3_600_000_000,
    numberOfSignificantValueDigits: packed ? 2 : 3,
    bitBucketSize: packed ? "packed" : 32,
  });
}

/** Milliseconds as the whole microseconds a histogram records (at least 1). */
export const microseconds = (ms: number) => Math.max(1, Math.round(ms * 1000));
