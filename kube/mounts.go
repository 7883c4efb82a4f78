package kube

import (
	"fmt"

	"github.com/stackrun/stack/spec"
)

// mounts adds a Pod volume and a container volumeMount for each Compose mount: named volumes
// as claims (or claim templates in statefulset mode), tmpfs as memory-backed emptyDir, anonymous
// volumes as emptyDir, bind mounts as hostPath only when allowed.
func (r *renderer) mounts(s *spec.Service, pod *PodSpec) {
	c := &pod.Containers[0]
	for i, m := range s.Mounts {
		vname := fmt.Sprintf("m%d", i)
		var src VolumeSource
		switch m.Type {
		case spec.MountVolume:
			if m.Source == "" {
				src.EmptyDir = &EmptyDirVolumeSource{}
				break
			}
			claim := r.volNames[m.Source]
			if r.opts.Volumes == VolumesStatefulSet {
				// the claim template of the same name provides it
				c.VolumeMounts = append(c.VolumeMounts, VolumeMount{Name: claim, MountPath: m.Target, ReadOnly: m.ReadOnly})
				continue
			}
			src.PersistentVolumeClaim = &PersistentVolumeClaimVolumeSource{ClaimName: claim, ReadOnly: m.ReadOnly}
		case spec.MountTmpfs:
			ed := &EmptyDirVolumeSource{Medium: StorageMediumMemory}
			if m.TmpfsSize > 0 {
				ed.SizeLimit = ptr(bytesQuantity(m.TmpfsSize))
			}
			src.EmptyDir = ed
		case spec.MountBind:
			if !r.opts.AllowHostPath {
				r.fail(s.Name, "volumes", "bind mount %s:%s: a cluster node does not have the project's files; use a volume, or --allow-hostpath to map it to a hostPath on whichever node runs the Pod", m.Source, m.Target)
				continue
			}
			src.HostPath = &HostPathVolumeSource{Path: m.Source}
			r.warn(s.Name, "volumes", "bind mount %s:%s mapped to hostPath: the path must exist on every node", m.Source, m.Target)
		default:
			r.fail(s.Name, "volumes", "mount type %q cannot be rendered", m.Type)
			continue
		}
		pod.Volumes = append(pod.Volumes, Volume{Name: vname, VolumeSource: src})
		c.VolumeMounts = append(c.VolumeMounts, VolumeMount{Name: vname, MountPath: m.Target, ReadOnly: m.ReadOnly})
	}
	if s.ShmSize > 0 {
		pod.Volumes = append(pod.Volumes, Volume{Name: "shm", VolumeSource: VolumeSource{
			EmptyDir: &EmptyDirVolumeSource{Medium: StorageMediumMemory, SizeLimit: ptr(bytesQuantity(s.ShmSize))},
		}})
		c.VolumeMounts = append(c.VolumeMounts, VolumeMount{Name: "shm", MountPath: "/dev/shm"})
	}
}

// claimTemplates returns one claim template per distinct named volume of s, for statefulset mode.
func (r *renderer) claimTemplates(s *spec.Service) []PersistentVolumeClaim {
	var out []PersistentVolumeClaim
	seen := map[string]bool{}
	for _, m := range s.Mounts {
		if m.Type != spec.MountVolume || m.Source == "" || seen[m.Source] {
			continue
		}
		seen[m.Source] = true
		if v := r.st.Volumes[m.Source]; v != nil && v.External && r.opts.Volumes == VolumesStatefulSet {
			r.warn(s.Name, "volumes", "external volume %q becomes a per-replica claim template: existing data is not carried over", m.Source)
		}
		out = append(out, PersistentVolumeClaim{
			TypeMeta:   TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
			ObjectMeta: ObjectMeta{Name: r.volNames[m.Source], Labels: map[string]string{LabelProject: dnsLabel(r.st.Name), LabelVolume: r.volNames[m.Source]}},
			Spec:       r.claimSpec(),
			Status:     &Empty{},
		})
	}
	return out
}
