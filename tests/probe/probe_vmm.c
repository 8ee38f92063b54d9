/* probe_vmm: the smallest VMM that exercises what `audit capture` records, for its integration test.
 * It creates a VM with two anonymous memslots, runs one vCPU on a few real-mode instructions (a store
 * to RAM, a store to an unbacked MMIO address, hlt), then changes the host mapping under the guest
 * (mprotect, MADV_DONTNEED, munmap of a page), moves and deletes a slot, and exits. Every step prints
 * one line; failures of KVM_RUN are reported, not fatal (some hosts refuse real mode). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define SLOT_SIZE 0x200000UL

static int slot(int vm, unsigned id, uint64_t gpa, uint64_t size, void *hva, unsigned flags)
{
	struct kvm_userspace_memory_region r = { .slot = id, .flags = flags, .guest_phys_addr = gpa,
						 .memory_size = size, .userspace_addr = (uintptr_t)hva };
	int ret = ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r);
	printf("memslot %u gpa=%#llx size=%#llx hva=%p -> %d\n", id, (unsigned long long)gpa,
	       (unsigned long long)size, hva, ret < 0 ? -errno : ret);
	return ret;
}

static void on_alarm(int sig) { (void)sig; }

int main(void)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) { perror("/dev/kvm"); return 2; }
	int vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0) { perror("KVM_CREATE_VM"); return 2; }

	uint8_t *ram = mmap(NULL, SLOT_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	uint8_t *data = mmap(NULL, SLOT_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (ram == MAP_FAILED || data == MAP_FAILED) { perror("mmap"); return 2; }

	/* Real mode at 0x1000: mov byte [0x2000], 0x42; out 0x10, al (an exit to us); jmp $ */
	const uint8_t code[] = { 0xc6, 0x06, 0x00, 0x20, 0x42, 0xe6, 0x10, 0xeb, 0xfe };
	memset(ram, 0x90, 0x10000); /* nops into the code wherever a stray jump lands */
	memcpy(ram + 0x1000, code, sizeof code);
	signal(SIGALRM, on_alarm); /* a host that never exits to us interrupts KVM_RUN instead */
	if (slot(vm, 0, 0, SLOT_SIZE, ram, 0) < 0 || slot(vm, 1, SLOT_SIZE, SLOT_SIZE, data, 0) < 0)
		return 2;

	int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	int size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	struct kvm_run *run = vcpu < 0 || size <= 0 ? MAP_FAILED : mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED) { perror("vcpu"); return 2; }

	struct kvm_sregs sregs;
	struct kvm_regs regs = { .rip = 0x1000, .rflags = 0x2 };
	if (ioctl(vcpu, KVM_GET_SREGS, &sregs) == 0) {
		sregs.cs.base = 0; sregs.cs.selector = 0;
		sregs.ds.base = 0; sregs.ds.selector = 0;
		ioctl(vcpu, KVM_SET_SREGS, &sregs);
	}
	ioctl(vcpu, KVM_SET_REGS, &regs);
	for (int i = 0; i < 2; i++) {
		alarm(2);
		int ret = ioctl(vcpu, KVM_RUN, 0);
		alarm(0);
		printf("run %d -> %d exit_reason=%u\n", i, ret < 0 ? -errno : ret, run->exit_reason);
		if (ret < 0 || run->exit_reason == KVM_EXIT_IO || run->exit_reason == KVM_EXIT_HLT || run->exit_reason == KVM_EXIT_SHUTDOWN
		    || run->exit_reason == KVM_EXIT_FAIL_ENTRY || run->exit_reason == KVM_EXIT_INTERNAL_ERROR)
			break;
	}
	data[0x10] = 1; /* the host touches the data slot */

	printf("mprotect ro -> %d\n", mprotect(data, SLOT_SIZE, PROT_READ));
	printf("mprotect rw -> %d\n", mprotect(data, SLOT_SIZE, PROT_READ | PROT_WRITE));
	printf("madvise dontneed -> %d\n", madvise(data, SLOT_SIZE, MADV_DONTNEED));
	printf("munmap page -> %d\n", munmap(data + 0x4000, 0x1000));
	slot(vm, 1, 3 * SLOT_SIZE, SLOT_SIZE, data, 0);  /* move */
	slot(vm, 1, 3 * SLOT_SIZE, 0, data, 0);          /* delete */
	close(vcpu);
	close(vm);
	close(kvm);
	printf("done\n");
	return 0;
}
