/**
 * The node's storages and what their volumes can do (pve-storage's plugins, `volume_has_feature`): LVM-thin takes
 * snapshots and linked clones of them; plain (thick) LVM holds raw volumes that can do neither; a directory storage
 * only snapshots qcow2 files.
 */
export type StorageType = 'dir' | 'lvmthin' | 'lvm';

export const STORAGE_TYPES: Readonly<Record<string, StorageType>> = {
  local: 'dir',
  'local-lvm': 'lvmthin',
  // A SAN volume group shared by the nodes: the usual place where plain LVM is still found.
  'san-lvm': 'lvm',
};

export const STORAGES = Object.keys(STORAGE_TYPES);

export function storageOf(volid: string): string {
  return volid.split(':')[0] ?? 'local-lvm';
}

/** `volume_has_feature($storecfg, 'snapshot', $volid)` for a VM disk. */
export function volumeCanSnapshot(volid: string): boolean {
  const type = STORAGE_TYPES[storageOf(volid)];
  if (type === 'lvmthin') return true;
  if (type === 'dir') return volid.endsWith('.qcow2');
  return false;
}

/** `/storage/{storage}` and the `/cluster/resources` storage rows' type-specific fields. */
export function storageConfig(storage: string): Record<string, unknown> {
  const type = STORAGE_TYPES[storage];
  if (type === 'dir') return { storage, type, path: '/var/lib/vz', content: 'iso,vztmpl,backup', digest: '6f0c3a3d' };
  if (type === 'lvm') return { storage, type, vgname: 'san', content: 'images,rootdir', shared: 1, digest: '6f0c3a3d' };
  return { storage, type: 'lvmthin', vgname: 'pve', thinpool: 'data', content: 'images,rootdir', digest: '6f0c3a3d' };
}
