// A verified history as a FHIR R4 Bundle of AuditEvents, as `cradle audit --format fhir` writes
// one (`client/src/fhir.rs`): each access (or review) with its time, outcome, purpose of use,
// the institution and clinician who asked, the custodian that logged it and the record, by
// keys and ids only. Built in the page from the verified events and downloaded through a
// `data:` link, as the mother's page offers her files: nothing is sent.

import { toBase64, toHex, utf8 } from '../../../js/bytes.js';

const SYSTEM_PURPOSE = 'http://terminology.hl7.org/CodeSystem/v3-ActReason';
const SYSTEM_DICOM = 'http://dicom.nema.org/resources/ontology/DCM';

function reference(sets, key) {
  const m = sets.memberByAnyKey(key);
  return m ? { display: m.name, identifier: { value: toHex(key) } } : { identifier: { value: toHex(key) } };
}

function auditEvent(sets, chainIdHex, e) {
  const o = e.outcome;
  const desc = {
    permitted: null,
    denied: `denied: ${o.reason}`,
    break_glass: 'emergency access without a grant (break-glass)',
    reviewed: o.kind === 'reviewed' ? `reviewed by the commission: ${String(o.decision).replace('_', ' ')} (break-glass access ${toHex(o.entry ?? new Uint8Array(0))})` : null,
    rotated: o.kind === 'rotated' ? `the patient rotated her keys: new key ${toHex(o.newKey)}` : null,
    recovered: o.kind === 'recovered' ? `a member recovered the patient (lost key): new key ${toHex(o.newKey)}` : null,
  }[o.kind];
  // A key change reads nothing: it changes who may act for the patient, and names no record.
  const keyChange = o.kind === 'rotated' || o.kind === 'recovered';
  const patient = { what: { identifier: { value: toHex(e.patient) } }, role: { code: '1', display: 'Patient' } };
  const event = {
    resourceType: 'AuditEvent',
    id: `access-${toHex(e.txHash).slice(0, 32)}`,
    type: keyChange
      ? { system: SYSTEM_DICOM, code: '110137', display: 'User Security Attributes Changed' }
      : { system: SYSTEM_DICOM, code: '110110', display: 'Patient Record' },
    action: keyChange ? 'U' : 'R',
    recorded: new Date(Number(e.timeMs)).toISOString(),
    outcome: o.kind === 'denied' ? '4' : '0',
    purposeOfEvent: [{ coding: [{ system: SYSTEM_PURPOSE, code: e.purpose }] }],
    agent: [{ requestor: true, who: reference(sets, e.staff ? e.staff.institution : e.accessor), ...(e.staff ? { role: [{ text: e.staff.role }], altId: toHex(e.staff.id) } : {}) }],
    source: { site: chainIdHex, observer: reference(sets, keyChange ? e.accessor : e.custodian) },
    entity: keyChange ? [patient] : [
      { what: { identifier: { value: toHex(e.archive) } }, detail: [{ type: 'category', valueString: e.category }] },
      patient,
    ],
  };
  if (desc) event.outcomeDesc = desc;
  return event;
}

/** The Bundle of `events` (verified, `{event}` each), as JSON text. */
export function fhirBundle(sets, chainIdHex, events) {
  return JSON.stringify({
    resourceType: 'Bundle',
    type: 'collection',
    entry: events.map((ie) => ({ resource: auditEvent(sets, chainIdHex, ie.event) })),
  }, null, 2);
}

/** Points the download link `a` at `text`, a `data:` URL. */
export function offerDownload(a, text) {
  a.href = `data:application/json;base64,${toBase64(utf8(text))}`;
  a.hidden = false;
}
