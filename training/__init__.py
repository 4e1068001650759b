"""xplus_release.training"""
