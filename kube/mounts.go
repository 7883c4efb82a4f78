package kube

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stackrun/stack/spec"
)

// mounts adds a Pod volume and a container volumeMount for each Compose mount: named volumes
// as claims (or claim templates in statefulset mode), tmpfs as memory-backed emptyDir, anonymous
// volumes as emptyDir, bind mounts as hostPath only when allowed.
func (r *renderer) mounts(s *spec.Service, pod *corev1.PodSpec) {
	c := &pod.Containers[0]
	for i, m := range s.Mounts {
		vname := fmt.Sprintf("m%d", i)
		var src corev1.VolumeSource
		switch m.Type {
		case spec.MountVolume:
			if m.Source == "" {
				src.EmptyDir = &corev1.EmptyDirVolumeSource{}
				break
			}
			claim := r.volNames[m.Source]
			if r.opts.Volumes == VolumesStatefulSet {
				// the claim template of the same name provides it
				c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: claim, MountPath: m.Target, ReadOnly: m.ReadOnly})
				continue
			}
			src.PersistentVolumeClaim = &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim, ReadOnly: m.ReadOnly}
		case spec.MountTmpfs:
			ed := &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}
			if m.TmpfsSize > 0 {
				ed.SizeLimit = resource.NewQuantity(m.TmpfsSize, resource.BinarySI)
			}
			src.EmptyDir = ed
		case spec.MountBind:
			if !r.opts.AllowHostPath {
				r.fail(s.Name, "volumes", "bind mount %s:%s: a cluster node does not have the project's files; use a volume, or --allow-hostpath to map it to a hostPath on whichever node runs the Pod", m.Source, m.Target)
				continue
			}
			src.HostPath = &corev1.HostPathVolumeSource{Path: m.Source}
			r.warn(s.Name, "volumes", "bind mount %s:%s mapped to hostPath: the path must exist on every node", m.Source, m.Target)
		default:
			r.fail(s.Name, "volumes", "mount type %q cannot be rendered", m.Type)
			continue
		}
		pod.Volumes = append(pod.Volumes, corev1.Volume{Name: vname, VolumeSource: src})
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: vname, MountPath: m.Target, ReadOnly: m.ReadOnly})
	}
	if s.ShmSize > 0 {
		pod.Volumes = append(pod.Volumes, corev1.Volume{Name: "shm", VolumeSource: corev1.VolumeSource{
			EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: resource.NewQuantity(s.ShmSize, resource.BinarySI)},
		}})
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "shm", MountPath: "/dev/shm"})
	}
}

// claimTemplates returns one claim template per distinct named volume of s, for statefulset mode.
func (r *renderer) claimTemplates(s *spec.Service) []corev1.PersistentVolumeClaim {
	var out []corev1.PersistentVolumeClaim
	seen := map[string]bool{}
	for _, m := range s.Mounts {
		if m.Type != spec.MountVolume || m.Source == "" || seen[m.Source] {
			continue
		}
		seen[m.Source] = true
		if v := r.st.Volumes[m.Source]; v != nil && v.External && r.opts.Volumes == VolumesStatefulSet {
			r.warn(s.Name, "volumes", "external volume %q becomes a per-replica claim template: existing data is not carried over", m.Source)
		}
		out = append(out, corev1.PersistentVolumeClaim{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
			ObjectMeta: metav1.ObjectMeta{Name: r.volNames[m.Source], Labels: map[string]string{LabelProject: dnsLabel(r.st.Name), LabelVolume: r.volNames[m.Source]}},
			Spec:       r.claimSpec(),
		})
	}
	return out
}
