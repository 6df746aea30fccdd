/**
 * The templates `npm run dev` starts with: a VM desktop on Proxmox, and Selkies desktops
 * on Kubernetes with and without a GPU (one light, sharing a GPU with others; one heavy,
 * taking a GPU whole). Existing templates are left as they are.
 */
import type { Pool } from '@neondatabase/serverless';

/** A frozen tag of the Selkies EGL desktop (pinned: `latest` moves, and Selkies' unreleased main differs). */
const SELKIES_IMAGE = 'ghcr.io/selkies-project/nvidia-egl-desktop:24.04-20250815000000';

const TEMPLATES = [
  {
    id: 'ubuntu-desktop',
    name: 'Ubuntu Desktop',
    os: 'Ubuntu 24.04',
    description: 'A VM on Proxmox, in the browser over VNC',
    backend: 'proxmox',
    protocol: 'vnc',
    plan: 'STANDARD',
    slots: 0,
    idle: 60,
    max: null,
    storage: null,
    image: null,
  },
  {
    id: 'gpu-workstation',
    name: 'GPU Workstation',
    os: 'Ubuntu 24.04 (KDE)',
    description: 'CAD and 3D on a shared GPU, streamed over WebRTC',
    backend: 'selkies',
    protocol: 'webrtc',
    plan: 'PREMIUM',
    slots: 2,
    idle: 30,
    max: 480,
    storage: 20,
    image: SELKIES_IMAGE,
  },
  {
    id: 'gpu-render',
    name: 'GPU Render Box',
    os: 'Ubuntu 24.04 (KDE)',
    description: 'ML and video work on a whole GPU',
    backend: 'selkies',
    protocol: 'webrtc',
    plan: 'PREMIUM',
    slots: 8,
    idle: 30,
    max: 720,
    storage: 100,
    image: SELKIES_IMAGE,
  },
  {
    id: 'streaming-desktop',
    name: 'Streaming Desktop (no GPU)',
    os: 'Ubuntu 24.04 (KDE)',
    description: 'WebRTC desktop with CPU encoding',
    backend: 'selkies',
    protocol: 'webrtc',
    plan: 'STANDARD',
    slots: 0,
    idle: 30,
    max: null,
    storage: 10,
    image: SELKIES_IMAGE,
  },
] as const;

export async function seedTemplates(pool: Pool): Promise<void> {
  for (const t of TEMPLATES) {
    await pool.query(
      `INSERT INTO templates (id, name, os, description, backend, protocol, default_plan, gpu_slots, idle_timeout_minutes,
         max_session_minutes, storage_gb, image, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, now(), now()) ON CONFLICT (id) DO NOTHING`,
      [t.id, t.name, t.os, t.description, t.backend, t.protocol, t.plan, t.slots, t.idle, t.max, t.storage, t.image],
    );
  }
}
