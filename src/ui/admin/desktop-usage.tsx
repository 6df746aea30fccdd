/**
 * A desktop's use over the last hour on /admin/sessions?desktop=<id>: one small chart per
 * measure (CPU, memory, network, disk), drawn server-side as inline SVG polylines. A gap
 * in the data (before the VM's run, a stopped VM) is a gap in the line, not a drop to zero.
 */
import type { FC } from 'hono/jsx';
import type { DesktopMetrics, MetricPoint } from '../../schemas/bridge-protocol';
import { type Loaded, Problem, failed } from './loaded';

const WIDTH = 240;
const HEIGHT = 48;
const INSET = 3;

type Series = { label: string; values: (number | null)[] };

/** The polyline segments of `values` scaled into the chart (nulls split the line). */
export function sparklinePaths(values: (number | null)[], max: number): string[] {
  const top = max > 0 ? max : 1;
  // Inset by the dot's radius and a bit, so the newest minute's dot is not cut at the edge.
  const step = values.length > 1 ? (WIDTH - 2 * INSET) / (values.length - 1) : 0;
  const segments: string[] = [];
  let current: string[] = [];
  values.forEach((v, i) => {
    if (v === null) {
      if (current.length) segments.push(current.join(' '));
      current = [];
      return;
    }
    const y = HEIGHT - 2 - (Math.min(v, top) / top) * (HEIGHT - 4);
    current.push(`${(INSET + i * step).toFixed(1)},${y.toFixed(1)}`);
  });
  if (current.length) segments.push(current.join(' '));
  return segments;
}

const last = (values: (number | null)[]) => [...values].reverse().find((v): v is number => v !== null) ?? null;

export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(v >= 100 || u === 0 ? 0 : 1)} ${units[u]}`;
}

const Chart: FC<{ title: string; series: Series[]; max: number; format: (n: number) => string }> = ({ title, series, max, format }) => {
  const now = series.map(
    (s) =>
      `${s.label} ${(() => {
        const v = last(s.values);
        return v === null ? '—' : format(v);
      })()}`,
  );
  return (
    <figure class="usage-chart">
      <figcaption>
        <strong>{title}</strong> <span class="small">{now.join(' · ')}</span>
      </figcaption>
      <svg
        viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
        width={WIDTH}
        height={HEIGHT}
        role="img"
        aria-label={`${title} over the last hour; now ${now.join(', ')}`}
        data-chart={title}
      >
        <rect x="0" y="0" width={WIDTH} height={HEIGHT} fill="none" stroke="currentColor" stroke-opacity="0.15" />
        {series.flatMap((s, i) =>
          sparklinePaths(s.values, max).map((points) => {
            // A lone minute (a VM that just started) is a dot: a one-point line draws nothing.
            if (!points.includes(' ')) {
              const [cx, cy] = points.split(',');
              return <circle cx={cx} cy={cy} r="2" fill="currentColor" fill-opacity={i === 0 ? '1' : '0.5'} />;
            }
            return <polyline points={points} fill="none" stroke="currentColor" stroke-width="1.5" stroke-opacity={i === 0 ? '1' : '0.5'} />;
          }),
        )}
      </svg>
    </figure>
  );
};

const pick = (series: MetricPoint[], key: keyof Omit<MetricPoint, 'time'>) => series.map((p) => p[key]);
const peak = (...lists: (number | null)[][]) => Math.max(0, ...lists.flat().filter((v): v is number => v !== null));

export const DesktopUsage: FC<{ desktopId: string; metrics: Loaded<DesktopMetrics> }> = ({ desktopId, metrics }) => {
  if (failed(metrics)) return <Problem what={`The use of desktop ${desktopId}`} v={metrics} />;
  const s = metrics.series;
  const cpu = pick(s, 'cpu');
  const mem = pick(s, 'memoryBytes');
  const memMax = last(pick(s, 'memoryMaxBytes')) ?? metrics.current?.memoryMaxBytes ?? peak(mem);
  const netIn = pick(s, 'netInBytesPerSecond');
  const netOut = pick(s, 'netOutBytesPerSecond');
  const read = pick(s, 'diskReadBytesPerSecond');
  const write = pick(s, 'diskWriteBytesPerSecond');
  return (
    <section aria-labelledby="usage-title" class="section usage" data-desktop-id={desktopId}>
      <h2 id="usage-title">{`Use of desktop ${desktopId}, last hour`}</h2>
      {metrics.source === 'none' ? (
        <p class="hint" data-field="usage-reason">
          {metrics.reason ?? 'No figures for this desktop.'}
        </p>
      ) : (
        <>
          <p class="hint">
            {metrics.current
              ? `Proxmox: ${metrics.current.status}, ${metrics.current.cpus} CPU${metrics.current.cpus === 1 ? '' : 's'}, ${bytes(metrics.current.memoryMaxBytes)} memory; one point a minute.`
              : 'Proxmox; one point a minute.'}
          </p>
          <div class="usage-charts">
            <Chart title="CPU" series={[{ label: 'used', values: cpu }]} max={1} format={(v) => `${(v * 100).toFixed(1)} %`} />
            <Chart title="Memory" series={[{ label: 'used', values: mem }]} max={memMax} format={bytes} />
            <Chart
              title="Network"
              series={[
                { label: 'in', values: netIn },
                { label: 'out', values: netOut },
              ]}
              max={peak(netIn, netOut)}
              format={(v) => `${bytes(v)}/s`}
            />
            <Chart
              title="Disk"
              series={[
                { label: 'read', values: read },
                { label: 'write', values: write },
              ]}
              max={peak(read, write)}
              format={(v) => `${bytes(v)}/s`}
            />
          </div>
        </>
      )}
    </section>
  );
};
