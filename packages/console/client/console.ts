/**
 * The console's page script (served from /assets, no inline script): live approvals and live sessions over
 * Server-Sent Events, countdowns, and the terminal player. Everything it inserts is HTML the server rendered and
 * escaped; nothing here builds markup from data.
 */
declare const AsciinemaPlayer:
  { create(src: string, element: Element, options?: object): unknown } | undefined;

function formatLeft(ms: number): string {
  if (ms <= 0) return 'expired';
  const s = Math.ceil(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  return `${m}m ${String(s % 60).padStart(2, '0')}s`;
}

function tickCountdowns(): void {
  for (const el of document.querySelectorAll<HTMLElement>('[data-expires-at]')) {
    el.textContent = formatLeft(Number(el.dataset['expiresAt']) - Date.now());
  }
}

function fragment(markup: string): Element | null {
  const template = document.createElement('template');
  template.innerHTML = markup;
  return template.content.firstElementChild;
}

function updateCounts(): void {
  const pending = document.getElementById('pending');
  const count = pending?.children.length ?? 0;
  const counter = document.getElementById('pending-count');
  if (counter) counter.textContent = String(count);
  const empty = document.getElementById('pending-empty');
  if (empty) empty.hidden = count > 0;
}

function followApprovals(url: string, focus: string | undefined): void {
  const source = new EventSource(url);
  source.addEventListener('approval', (message) => {
    const data = JSON.parse((message as MessageEvent<string>).data) as {
      id: string;
      state: string;
      html: string;
    };
    if (focus !== undefined && data.id !== focus) return;
    const card = fragment(data.html);
    if (card === null) return;
    const existing = document.getElementById(`approval-${data.id}`);
    const target = document.getElementById(data.state === 'pending' ? 'pending' : 'decided');
    if (existing !== null && existing.parentElement === target) {
      // Keep what a person is typing into a pending card: only settled cards are replaced in place.
      if (data.state !== 'pending' || existing.dataset['state'] !== 'pending') existing.replaceWith(card);
    } else {
      existing?.remove();
      if (data.state === 'pending') target?.append(card);
      else target?.prepend(card);
    }
    updateCounts();
    tickCountdowns();
  });
}

function followLive(url: string): void {
  const list = document.getElementById('live-events');
  const source = new EventSource(url);
  source.addEventListener('event', (message) => {
    const data = JSON.parse((message as MessageEvent<string>).data) as { html: string };
    const item = fragment(data.html);
    if (item !== null && list !== null) {
      const atBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
      list.append(item);
      if (atBottom) item.scrollIntoView({ block: 'end' });
    }
  });
  source.addEventListener('ended', (message) => {
    const data = JSON.parse((message as MessageEvent<string>).data) as { reason: string };
    source.close();
    const state = document.getElementById('live-state');
    if (state) {
      state.textContent = 'ended';
      state.classList.remove('live');
    }
    const note = document.getElementById('live-ended');
    if (note) {
      note.textContent = `The session has ended: ${data.reason}.`;
      note.hidden = false;
    }
    const button = document.getElementById('terminate') as HTMLButtonElement | null;
    if (button) button.disabled = true;
  });
}

function startPlayer(): void {
  const element = document.getElementById('player');
  const cast = element?.dataset['cast'];
  if (element === null || cast === undefined || typeof AsciinemaPlayer === 'undefined') return;
  AsciinemaPlayer.create(cast, element, { fit: 'width', idleTimeLimit: 2, preload: true, controls: true });
}

function start(): void {
  const { stream, focus, live } = document.body.dataset;
  if (stream !== undefined) followApprovals(stream, focus);
  if (live !== undefined) followLive(live);
  tickCountdowns();
  setInterval(tickCountdowns, 1000);
  startPlayer();
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
