/**
 * JUnit XML for CI test reporters (GitHub, GitLab, Jenkins, Buildkite read it): one testcase per
 * model and check (latency, size, accuracy), a <failure> for each regression, and a <skipped>
 * testcase for each model present in only one of the two runs.
 */
import { latencyMessage, sizeMessage, type Comparison } from './gate.js';

export function xmlEscape(s: string): string {
  return s.replace(/[<>&"']/g, (ch) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[ch]!)
    // characters XML 1.0 cannot carry at all
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '');
}

interface Case { classname: string; name: string; failure?: string; skipped?: string; output?: string }

export function formatJUnit(c: Comparison, suiteName = 'retarget compare'): string {
  const cases: Case[] = [];
  const t = c.thresholds;
  for (const m of c.models) {
    const cls = `retarget.compare.${m.name}`;
    const lat = latencyMessage(m.latency, t);
    cases.push({ classname: cls, name: 'latency', output: lat, ...(m.latency.verdict === 'regression' ? { failure: lat } : {}) });
    const size = sizeMessage(m.size, t);
    cases.push({ classname: cls, name: 'size', output: size, ...(m.size.verdict === 'regression' ? { failure: size } : {}) });
    if (m.accuracy) {
      const a = m.accuracy;
      const msg = a.reason ?? `cosine ${a.current.cosine} (baseline ${a.baseline.cosine}), ok ${a.current.ok}`;
      cases.push({ classname: cls, name: 'accuracy', output: msg, ...(a.verdict === 'regression' ? { failure: msg } : {}) });
    }
  }
  for (const name of c.onlyInBaseline) cases.push({ classname: `retarget.compare.${name}`, name: 'present', skipped: 'only in the baseline: not compared' });
  for (const name of c.onlyInCurrent) cases.push({ classname: `retarget.compare.${name}`, name: 'present', skipped: 'only in the current run: no baseline' });

  const failures = cases.filter((k) => k.failure !== undefined).length;
  const skipped = cases.filter((k) => k.skipped !== undefined).length;
  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>'];
  const counts = `tests="${cases.length}" failures="${failures}" errors="0" skipped="${skipped}"`;
  out.push(`<testsuites name="${xmlEscape(suiteName)}" ${counts}>`);
  out.push(`  <testsuite name="${xmlEscape(suiteName)}" ${counts}>`);
  if (c.environmentDifferences.length) {
    out.push('    <properties>');
    out.push(`      <property name="environment-differs" value="${xmlEscape(c.environmentDifferences.join('; '))}"/>`);
    out.push('    </properties>');
  }
  for (const k of cases) {
    const head = `    <testcase classname="${xmlEscape(k.classname)}" name="${xmlEscape(k.name)}" time="0"`;
    if (k.failure === undefined && k.skipped === undefined && k.output === undefined) { out.push(`${head}/>`); continue; }
    out.push(`${head}>`);
    if (k.failure !== undefined) out.push(`      <failure message="${xmlEscape(k.failure)}" type="regression">${xmlEscape(k.failure)}</failure>`);
    if (k.skipped !== undefined) out.push(`      <skipped message="${xmlEscape(k.skipped)}"/>`);
    if (k.output !== undefined) out.push(`      <system-out>${xmlEscape(k.output)}</system-out>`);
    out.push('    </testcase>');
  }
  out.push('  </testsuite>', '</testsuites>', '');
  return out.join('\n');
}
