// Pieces shared by every rawrxd compute shader: the extensions they all use and small helpers.
//
// Subgroup size is never assumed: shaders read gl_SubgroupSize / gl_NumSubgroups, and the host
// sizes workgroups from DeviceCaps (a multiple of the subgroup size, full subgroups required).
// Clustered subgroup operations are not used (lavapipe's are wrong).

#ifndef COMMON_GLSL
#define COMMON_GLSL

#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require

// Workgroups past 65535 in x wrap into y: the linear workgroup index.
uint linear_group() { return gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x; }

float silu(float x) { return x / (1.0 + exp(-x)); }

// Largest number of subgroups a workgroup can hold (1024 invocations / subgroup size 4).
#define MAX_SUBGROUPS 256

#endif // COMMON_GLSL
